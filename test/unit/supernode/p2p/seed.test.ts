import { randomBytes, createHash } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryKv } from '../../../../src/db.ts';
import { sha256Digest } from '../../../../src/digest.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { DEFAULT_PIECE_BYTES, layoutFor } from '../../../../src/p2p/metainfo.ts';
import type { MetainfoBody } from '../../../../src/p2p/supernode-api.ts';
import { Seed } from '../../../../supernode/p2p/seed.ts';

describe('Seed', () => {
  it('hashes a held blob again when its stored metainfo has another piece layout, without the registry', async () => {
    const blob = randomBytes(3 * DEFAULT_PIECE_BYTES + 1234);
    const digest = sha256Digest(blob);
    const store = new MemoryContentStore();
    const ingest = await store.openIngest(digest);
    await ingest.writeAt(blob, 0);
    await ingest.commit(blob.length);
    // Metainfo written with 4 MiB pieces (the layout before DEFAULT_PIECE_BYTES changed): one piece.
    const kv = new MemoryKv<MetainfoBody>();
    const oldHash = createHash('sha256').update(blob).digest('hex');
    await kv.put(digest, { digest, size: blob.length, pieceSize: 4 << 20, pieceCount: 1, hashes: [oldHash] });
    const seed = new Seed({ store, kv, logger: pino({ level: 'silent' }) });
    await seed.start();
    expect(seed.get(digest)).toBeUndefined();
    // The upstream is unreachable on purpose: the held blob must be enough.
    const task = await seed.ensure({ peerId: 'p', digest, upstream: { baseUrl: 'http://127.0.0.1:1', name: 'x/y' } });
    const layout = layoutFor(digest, blob.length);
    expect(task.meta.pieceSize).toBe(layout.pieceSize);
    expect(task.meta.pieceCount).toBe(4);
    const want = [0, 1, 2, 3].map((i) => createHash('sha256').update(blob.subarray(i * layout.pieceSize, (i + 1) * layout.pieceSize)).digest('hex'));
    expect(task.meta.hashes).toEqual(want);
    expect((await kv.get(digest))?.hashes).toEqual(want);
    await seed.close();
  });
});
