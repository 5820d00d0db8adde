// The registry fallback of a transfer: when P2P stops making progress (or the supernode is lost),
// the pieces still missing are fetched from the registry in ranged GETs, one per run of missing
// pieces, with the client's own credentials. A piece whose hash the seed published is checked
// against it; the whole blob is checked at commit either way.
import type { Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import type { Bitfield } from '../../src/p2p/bitfield.ts';
import type { MetainfoBody } from '../../src/p2p/supernode-api.ts';
import type { BlobFetchRequest } from '../blob-downloader.ts';
import type { UpstreamFetch } from './transfer-seams.ts';

export interface FallbackPort {
  readonly fetchRange: UpstreamFetch;
  readonly upstream: BlobFetchRequest['upstream'];
  readonly digest: Digest;
  readonly meta: MetainfoBody;
  /** The verified pieces; fetched pieces are set in it by `store`. */
  readonly have: Bitfield;
  readonly signal: AbortSignal;
  /** False once the transfer is finishing (the last piece came from P2P meanwhile). */
  running(): boolean;
  received(bytes: number): void;
  /** False when the piece's hash is known and `data` does not match it. */
  matches(index: number, data: Buffer): boolean;
  store(index: number, data: Buffer): Promise<void>;
}

/** Fetches every missing piece from the registry; throws when the registry fails or disagrees. */
export async function fetchMissingFromUpstream(port: FallbackPort): Promise<void> {
  const { meta, have } = port;
  let i = 0;
  while (i < meta.pieceCount) {
    if (have.has(i)) {
      i++;
      continue;
    }
    let j = i;
    while (j + 1 < meta.pieceCount && !have.has(j + 1)) j++;
    const first = i;
    const start = first * meta.pieceSize;
    const end = Math.min(meta.size, (j + 1) * meta.pieceSize) - 1;
    await port.fetchRange(port.upstream, port.digest, { start, end }, port.signal, async (piece, data) => {
      if (!port.running()) throw new PollenError('ERR_ABORTED', 'transfer already finishing');
      const index = first + piece;
      port.received(data.length);
      if (!port.matches(index, data)) throw new PollenError('ERR_PIECE_DIGEST_MISMATCH', `registry piece ${index} of ${port.digest} does not match the seed's hash`);
      await port.store(index, data);
    }, meta.pieceSize);
    i = j + 1;
  }
  if (!have.complete) throw new PollenError('ERR_INTERNAL', `blob ${port.digest} incomplete after the registry fallback`);
}
