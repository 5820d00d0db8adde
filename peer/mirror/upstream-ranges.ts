// A byte range of a blob straight from the registry (the P2P fallback for the pieces still
// missing), with the client's credentials, cut into pieces as it streams: `onPiece(k, bytes)` gets
// the k-th piece of the range. A registry that ignores Range (200) is read from the start and the
// bytes before the range are skipped. The body is paced by the target's download budget, if any.
import type { Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import type { ByteRange } from '../../src/content-store.ts';
import { RegistryClient } from '../../src/oci/registry-client.ts';
import type { UpstreamTarget } from '../blob-downloader.ts';
import { upstreamStatusError } from './upstream-downloader.ts';
import { joinBuffers } from '../../src/bytes.ts';
import { pacedChunks } from '../../src/rate/throttle.ts';

export async function fetchRangeFromUpstream(
  upstream: UpstreamTarget,
  digest: Digest,
  range: ByteRange,
  signal: AbortSignal,
  onPiece: (k: number, data: Buffer) => Promise<void>,
  pieceSize: number,
): Promise<void> {
  const client = new RegistryClient({}, { baseUrl: upstream.baseUrl });
  const headers: Record<string, string> = { range: `bytes=${range.start}-${range.end}` };
  if (upstream.authorization) headers.authorization = upstream.authorization;
  const res = await client.request('GET', `/v2/${upstream.name}/blobs/${digest}`, { headers, signal, scope: `repository:${upstream.name}:pull`, relayAuth: true });
  if (res.statusCode !== 200 && res.statusCode !== 206) {
    await res.body.dump();
    throw upstreamStatusError(res.statusCode, upstream.baseUrl, digest);
  }
  let skip = res.statusCode === 200 ? range.start : 0;
  const total = range.end - range.start + 1;
  let got = 0;
  let k = 0;
  let piece: Buffer[] = [];
  let inPiece = 0;
  for await (const raw of pacedChunks(res.body as AsyncIterable<Buffer>, upstream.throttle, signal)) {
    let chunk = raw as Buffer;
    if (skip > 0) {
      const n = Math.min(skip, chunk.length);
      skip -= n;
      chunk = chunk.subarray(n);
    }
    while (chunk.length > 0 && got < total) {
      const want = Math.min(pieceSize - inPiece, total - got);
      const take = chunk.subarray(0, want);
      chunk = chunk.subarray(take.length);
      piece.push(take);
      inPiece += take.length;
      got += take.length;
      if (inPiece === pieceSize || got === total) {
        await onPiece(k++, joinBuffers(piece, inPiece));
        piece = [];
        inPiece = 0;
      }
    }
    if (got >= total) {
      res.body.destroy();
      break;
    }
  }
  if (got < total) throw new PollenError('ERR_SIZE_MISMATCH', `registry sent ${got} of ${total} bytes of ${digest}`, { digest });
}
