// The host's download budget reaches the two registry/seed paths the P2P transfer calls without
// knowing of it: seed-piece bodies (the budget the transfer passes with each request) and the
// registry's bytes of any download (the budget stamped on the request's target).
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import type { Digest } from '../../../../src/digest.ts';
import type { PartialBlob } from '../../../../src/partial-blob.ts';
import { TokenBucket } from '../../../../src/p2p/token-bucket.ts';
import { withDownloadBudget, type BlobFetchRequest } from '../../../../peer/blob-downloader.ts';
import { fetchSeedPiece } from '../../../../peer/p2p/seed-piece.ts';

const DIGEST = `sha256:${'a'.repeat(64)}` as Digest;
const flush = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

describe('download budget on the seed and registry paths', () => {
  it('a seed piece fetched with the host\'s budget arrives at the budget\'s rate', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 1000, burstBytes: 100 });
    const client = { seedPiece: async () => ({ body: Readable.from([Buffer.alloc(100), Buffer.alloc(100), Buffer.alloc(100)]), pieceHash: () => undefined }) };
    let got = 0;
    const piece = fetchSeedPiece(client as never, { supernode: 'x', digest: DIGEST, index: 0, length: 300, stallMs: 60_000, signal: new AbortController().signal, throttle: bucket, onChunk: (n) => (got += n) });
    await flush();
    expect(got).toBe(100);
    clock.advance(100);
    await flush();
    expect(got).toBe(200);
    clock.advance(100);
    await flush();
    expect((await piece).chunks.reduce((n, b) => n + b.length, 0)).toBe(300);
  });

  it('a seed piece without a budget is not held back', async () => {
    const client = { seedPiece: async () => ({ body: Readable.from([Buffer.alloc(100), Buffer.alloc(100)]), pieceHash: () => undefined }) };
    const { chunks } = await fetchSeedPiece(client as never, { supernode: 'x', digest: DIGEST, index: 0, length: 200, stallMs: 60_000, signal: new AbortController().signal });
    expect(chunks).toHaveLength(2);
  });

  it('a seed body that stops for stallMs is given up; one whose chunks keep coming is not, however long it takes', async () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    async function* trickle(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 6; i++) {
        await sleep(40);
        yield Buffer.alloc(10);
      }
    }
    const slow = { seedPiece: async () => ({ body: Readable.from(trickle()), pieceHash: () => undefined }) };
    // 240 ms in all, never 150 ms without a chunk.
    const { chunks } = await fetchSeedPiece(slow as never, { supernode: 'x', digest: DIGEST, index: 0, length: 60, stallMs: 150, signal: new AbortController().signal });
    expect(chunks).toHaveLength(6);
    // As undici does, the request's signal ends the body with its reason.
    const stuck = {
      seedPiece: async (_url: string, _digest: Digest, _index: number, signal: AbortSignal) => {
        const body = new Readable({ read() {} }); // one chunk, then nothing more
        body.push(Buffer.alloc(10));
        signal.addEventListener('abort', () => body.destroy(signal.reason as Error), { once: true });
        return { body, pieceHash: () => undefined };
      },
    };
    const started = performance.now();
    await expect(fetchSeedPiece(stuck as never, { supernode: 'x', digest: DIGEST, index: 3, length: 60, stallMs: 150, signal: new AbortController().signal })).rejects.toMatchObject({
      code: 'ERR_SUPERNODE_UNAVAILABLE',
      message: expect.stringContaining('seed piece 3 stalled for 150 ms'),
    });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('withDownloadBudget stamps the budget on every request\'s target, and is a no-op when unlimited', async () => {
    const seen: BlobFetchRequest[] = [];
    const inner = { start: async (r: BlobFetchRequest) => (seen.push(r), {} as PartialBlob) };
    const bucket = new TokenBucket({ clock: new ManualClock() }, { bytesPerSecond: 1000, burstBytes: 100 });
    const request: BlobFetchRequest = { digest: DIGEST, sizeHint: 1, upstream: { baseUrl: 'http://r', name: 'n', authorization: undefined } };
    await withDownloadBudget(inner, bucket).start(request);
    expect(seen[0]!.upstream.throttle).toBe(bucket);
    expect(request.upstream.throttle).toBeUndefined();
    const free = new TokenBucket({ clock: new ManualClock() }, { bytesPerSecond: 0, burstBytes: 1 });
    expect(withDownloadBudget(inner, free)).toBe(inner);
  });
});
