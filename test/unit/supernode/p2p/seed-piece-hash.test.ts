// A seed piece carries its sha256 (PIECE_HASH_HEADER), so that the peer verifies it without a sync
// for the hash first: through the real cluster app, seed and peer client over HTTP, a piece the seed
// already has brings the hash in the answer's head; a piece the seed is still receiving from the
// registry when asked for comes as a chunked body with the hash as its trailer, and that hash is
// the hash of the bytes that came; the same over the seed channel (its head and end frames). The
// seed's signature of the hash (PIECE_SIGNATURE_HEADER, a piece
// proof) goes beside it, head or trailer, and checks against the key of the registration answer.
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../../src/clock.ts';
import { MemoryKv } from '../../../../src/db.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { RegistryHosts } from '../../../../src/oci/registry-hosts.ts';
import { DEFAULT_PIECE_BYTES } from '../../../../src/p2p/metainfo.ts';
import { PIECE_HASH_HEADER, PIECE_SIGNATURE_HEADER, type MetainfoBody } from '../../../../src/p2p/supernode-api.ts';
import { PieceSigner } from '../../../../src/p2p/piece-proof.ts';
import { SupernodeClient } from '../../../../peer/p2p/supernode-client.ts';
import { createClusterApp } from '../../../../supernode/http/apps.ts';
import { Scheduler } from '../../../../supernode/p2p/scheduler.ts';
import { Seed } from '../../../../supernode/p2p/seed.ts';
import { Tracker } from '../../../../supernode/p2p/tracker.ts';
import { FakeRegistry } from './seed-fakes.ts';

const logger = pino({ level: 'silent' });
const REG = 'registry.example';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function cluster(via: 'http' | 'channel' = 'channel') {
  const registry = new FakeRegistry();
  const hosts = new RegistryHosts({ defaultUpstream: 'http://127.0.0.1:5000', registries: new Map([[REG, 'https://registry.internal:8443']]) });
  const seed = new Seed({ store: new MemoryContentStore(), kv: new MemoryKv<MetainfoBody>(), logger, hosts, fetcher: registry });
  const scheduler = new Scheduler({ clock: systemClock });
  const tracker = new Tracker({ clock: systemClock, onDrop: (p) => scheduler.dropPeer(p) });
  const jobs = { work: () => ({ work: [], pollMs: 1_000 }) };
  const app = createClusterApp(logger, { tracker, scheduler, seed, jobs, signer: PieceSigner.generate() }, { secret: undefined });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const client = new SupernodeClient({}, { urls: [url], timeoutMs: 5_000, syncChannel: via === 'channel' });
  cleanups.push(() => seed.close(), () => app.close(), () => client.close());
  await client.register(url, { peerId: 'p1', wireAddr: '127.0.0.1:1', uploadSlots: 4, holdings: [] });
  return { registry, seed, client, url };
}

describe('seed piece hash', () => {
  it.each(['http', 'channel'] as const)('comes in the head for a piece the seed has, and as the trailer of a piece still coming from the registry (%s)', async (via) => {
    const { registry, seed, client, url } = await cluster(via);
    const bytes = randomBytes(2 * DEFAULT_PIECE_BYTES);
    const piece = (i: number) => bytes.subarray(i * DEFAULT_PIECE_BYTES, (i + 1) * DEFAULT_PIECE_BYTES);
    // The registry sends its first chunk, then holds the rest until released.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    registry.gate = (offset) => (offset === 0 ? Promise.resolve() : released);
    const digest = registry.add({ bytes, name: 'app' });
    const meta = await client.createTask(url, { digest, sizeHint: bytes.length, upstream: { registry: REG, name: 'app' } });
    expect(meta.hashes).toEqual([null, null]);

    let taken = 0;
    const readPiece = seed.readPiece.bind(seed);
    seed.readPiece = async (...args) => {
      const piece = await readPiece(...args);
      taken++;
      return piece;
    };
    const asked = client.seedPiece(url, digest, 0, AbortSignal.timeout(10_000));
    // The seed takes the request while it has only the registry's first chunk of the piece; the
    // piece counts as served only once it went whole.
    await expect.poll(() => taken, { timeout: 10_000 }).toBe(1);
    expect(seed.get(digest)!.meta.hashes[0]).toBeNull();
    expect(seed.counters.servedBytes).toBe(0);
    release();
    const first = await asked;
    // Its head went out before the seed had the whole piece: no hash there, a trailer (the
    // channel's end frame) instead.
    expect(first.pieceHash()).toBeUndefined();
    const got: Buffer[] = [];
    for await (const c of first.body) got.push(c as Buffer);
    expect(Buffer.concat(got).equals(piece(0))).toBe(true);
    expect(first.pieceHash()).toBe(sha256(piece(0)));
    await expect.poll(() => seed.counters.servedBytes, { timeout: 10_000 }).toBe(DEFAULT_PIECE_BYTES);
    const key = client.proofVerifier(url)!;
    expect(key.verify(digest, { index: 0, hash: first.pieceHash()!, signature: first.pieceSignature!()! })).toBe(true);

    // Once the seed has the second piece too (it follows the first), a sync brings its hash.
    await expect.poll(() => seed.get(digest)!.meta.hashes[1], { timeout: 10_000 }).toBe(sha256(piece(1)));
    const synced = await client.sync(url, digest, { have: [], wantSeed: 0, badParents: [] });
    expect(synced.hashes[1]).toBe(sha256(piece(1)));
    const second = await client.seedPiece(url, digest, 1, AbortSignal.timeout(10_000));
    const rest: Buffer[] = [];
    for await (const c of second.body) rest.push(c as Buffer);
    expect(Buffer.concat(rest).equals(piece(1))).toBe(true);
    expect(second.pieceHash()).toBe(sha256(piece(1)));
    expect(key.verify(digest, { index: 1, hash: second.pieceHash()!, signature: second.pieceSignature!()! })).toBe(true);
    expect(client.seedPieces).toEqual(via === 'channel' ? { channel: 2, http: 0 } : { channel: 0, http: 2 });
  });

  it('the head carries it before the body when the seed has the piece; the trailer only when it did not', async () => {
    const { registry, url, client } = await cluster();
    const bytes = randomBytes(DEFAULT_PIECE_BYTES);
    const digest = registry.add({ bytes, name: 'app' });
    await client.createTask(url, { digest, sizeHint: bytes.length, upstream: { registry: REG, name: 'app' } });
    await expect.poll(async () => (await client.sync(url, digest, { have: [], wantSeed: 0, badParents: [] })).hashes[0], { timeout: 10_000 }).toBe(sha256(bytes));
    // Asked of the API directly: a content-length and the hash in the head, no trailer.
    const token = (client as unknown as { sessions: Map<string, { token: string }> }).sessions.get(url)!.token;
    const res = await fetch(`${url}/api/v1/seed/${digest}/pieces/0`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get(PIECE_HASH_HEADER)).toBe(sha256(bytes));
    const signature = Buffer.from(res.headers.get(PIECE_SIGNATURE_HEADER)!, 'base64');
    expect(client.proofVerifier(url)!.verify(digest, { index: 0, hash: sha256(bytes), signature })).toBe(true);
    expect(res.headers.get('content-length')).toBe(String(bytes.length));
    expect(res.headers.get('trailer')).toBeNull();
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
  });
});
