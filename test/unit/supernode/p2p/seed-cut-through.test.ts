// What the seed serves while it is still fetching a blob: a piece the registry has sent whole goes
// to the peer leased it, with its hash, at once, and does not wait in the seed's write batch for
// bytes of the pieces after it (with the registry's stream shared by a pull's layers, those came a
// few hundred milliseconds later, while the supernode's uplink sent nothing).
import { createHash, randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { MemoryKv } from '../../../../src/db.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { RegistryHosts } from '../../../../src/oci/registry-hosts.ts';
import { DEFAULT_PIECE_BYTES } from '../../../../src/p2p/metainfo.ts';
import type { MetainfoBody } from '../../../../src/p2p/supernode-api.ts';
import { BODY_CHUNK_BYTES } from '../../../../src/pooled-body.ts';
import { Seed } from '../../../../supernode/p2p/seed.ts';
import { FakeRegistry } from './seed-fakes.ts';

const REG = 'registry.example';
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('Seed: a piece the registry has sent whole', () => {
  it('is served whole, with its hash, while the registry holds back the rest of the blob', async () => {
    const registry = new FakeRegistry();
    const bytes = randomBytes(4 * DEFAULT_PIECE_BYTES);
    // The registry sends the first piece and one chunk of the second, then nothing until released.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    registry.gate = (offset) => (offset <= DEFAULT_PIECE_BYTES ? Promise.resolve() : released);
    const digest = registry.add({ bytes, name: 'app' });
    const hosts = new RegistryHosts({ defaultUpstream: 'http://127.0.0.1:5000', registries: new Map([[REG, 'https://registry.internal']]) });
    const seed = new Seed({ store: new MemoryContentStore(), kv: new MemoryKv<MetainfoBody>(), logger: pino({ level: 'silent' }), hosts, clock: new ManualClock(1_000), fetcher: registry });
    cleanups.push(() => seed.close());
    cleanups.push(async () => release());

    const task = await seed.openTask({ peerId: 'p', digest, upstream: { registry: REG, name: 'app' } });
    const { body } = await seed.readPiece('p', digest, 0);
    const got: Buffer[] = [];
    for await (const c of body.chunks(() => Buffer.allocUnsafe(BODY_CHUNK_BYTES))) got.push(Buffer.from(c));
    expect(Buffer.concat(got).equals(bytes.subarray(0, DEFAULT_PIECE_BYTES))).toBe(true);
    await expect.poll(() => task.meta.hashes[0]).toBe(createHash('sha256').update(bytes.subarray(0, DEFAULT_PIECE_BYTES)).digest('hex'));
    // All of it while the registry still held back everything past the second piece's first chunk.
    expect(registry.pulled).toBeLessThanOrEqual(DEFAULT_PIECE_BYTES + registry.chunkBytes);
    expect(task.meta.hashes[1]).toBeNull();
    expect(task.state.name).toBe('fetching');
    // Before, the piece waited in the batch for bytes the registry held back: the read never ended.
  }, 15_000);
});
