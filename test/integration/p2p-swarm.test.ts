// Several peers (the real P2P parts, in process) pulling one layer through a real supernode from a
// real registry, driven through the BlobDownloader seam.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { buffer } from 'node:stream/consumers';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../../src/digest.ts';
import type { BuiltLayer } from '../helpers/images.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { freePort, waitFor } from '../helpers/tools.ts';
import { startPeer, startSupernode, watchDigests, type TestPeer } from '../helpers/p2p-swarm.ts';
import { SupernodeClient } from '../../peer/p2p/supernode-client.ts';
import { HOST_SEED_LEASES } from '../../peer/p2p/seed-grants.ts';
import { Bitfield } from '../../src/p2p/bitfield.ts';
import { ProofVerifier } from '../../src/p2p/piece-proof.ts';
import { pieceCountFor, pieceHashList, pieceRange, pieceSizeFor, pieceSizeForSwarm } from '../../src/p2p/metainfo.ts';
import { sha256Digest } from '../../src/digest.ts';
import { generateSecret, pskClientOptions } from '../../src/cluster-tls.ts';
import { API, MAX_SYNC_PACE_MS } from '../../src/p2p/supernode-api.ts';
import { SYNC_PACE_WINDOW_MS } from '../../supernode/p2p/sync-pacer.ts';
import { Agent, type Dispatcher } from 'undici';

const LAYER_BYTES = 40 << 20;
/** A second, smaller layer of the same image. */
const SECOND_LAYER_BYTES = 2 << 20;
/** The swarm's cluster secret: the wire runs TLS with its key (and the API checks its token). */
const SECRET = generateSecret();

describe('P2P swarm over a real registry', () => {
  let registry: TestRegistry;
  let layer: BuiltLayer;
  let second: BuiltLayer;
  let layoutDir: string;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    registry = await TestRegistry.start();
    ({ layers: [layer, second], layoutDir } = await registry.pushRandomImage('test/swarm:v1', [
      { seed: 'swarm', bytes: LAYER_BYTES },
      { seed: 'swarm-second', bytes: SECOND_LAYER_BYTES },
    ]));
  });

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await registry?.stop();
    await rm(layoutDir, { recursive: true, force: true });
  });

  async function peers(n: number, urls: string[], options: Parameters<typeof startPeer>[1] = {}): Promise<TestPeer[]> {
    const out = await Promise.all(Array.from({ length: n }, () => startPeer(urls, { secret: SECRET, ...options })));
    for (const p of out) cleanups.push(() => p.close());
    return out;
  }

  /** A fresh supernode with a peer registered through the API alone (no agent) that created the swarm layer's task. */
  async function apiPeerWithTask(peerId: string, dispatcher?: Dispatcher, syncRate?: number) {
    const { node } = await startSupernode({ upstream: registry.url, secret: SECRET, ...(syncRate === undefined ? {} : { syncRate }) });
    cleanups.push(() => node.close());
    const client = new SupernodeClient(dispatcher ? { dispatcher } : {}, { urls: [node.url], secret: SECRET, timeoutMs: 5_000 });
    cleanups.push(() => client.close());
    const digest = layer.descriptor.digest as Digest;
    await client.register(node.url, { peerId, wireAddr: '127.0.0.1:1', uploadSlots: 1, holdings: [] });
    const meta = await client.createTask(node.url, { peerId, digest, upstream: { registry: registry.host, name: 'test/swarm' } });
    return { node, client, digest, meta };
  }

  it('five peers pulling at once get identical blobs, the registry sends it about once, and most bytes come from peers', async () => {
    const { node } = await startSupernode({ upstream: registry.url, secret: SECRET });
    cleanups.push(() => node.close());
    const swarm = await peers(5, [node.url]);
    const digest = layer.descriptor.digest as Digest;
    const before = registry.blobBytesSent();
    const got = await Promise.all(swarm.map((p) => p.pull(registry.url, 'test/swarm', digest)));
    expect(new Set(got)).toEqual(new Set([digest]));
    for (const p of swarm) expect((await p.store.stat(digest))?.size).toBe(layer.blob.length);
    const registryBytes = registry.blobBytesSent() - before;
    expect(registryBytes).toBeLessThanOrEqual(1.1 * layer.blob.length);
    const fromPeers = swarm.reduce((n, p) => n + p.agent.totals.peer, 0);
    const fromSeed = swarm.reduce((n, p) => n + p.agent.totals.seed, 0);
    const fromUpstream = swarm.reduce((n, p) => n + p.agent.totals.upstream, 0);
    expect(fromUpstream).toBe(0);
    expect(fromPeers).toBeGreaterThan(fromSeed);
    // Every peer holds the supernode's proof of every piece's hash, from the seed's answers or from
    // its parents on the wire, checked against the key of the registration answer: what it hands on.
    const probe = new SupernodeClient({}, { urls: [node.url], secret: SECRET, timeoutMs: 5_000 });
    cleanups.push(() => probe.close());
    const key = new ProofVerifier(String((await probe.register(node.url, { peerId: 'key-reader', wireAddr: '127.0.0.1:1', uploadSlots: 1, holdings: [] })).pieceKey));
    for (const p of swarm) {
      const source = p.agent.pieces.source(digest)!;
      for (let i = 0; i < source.pieceCount; i++) expect(key.verify(digest, source.proof(i)!)).toBe(true);
    }

    // A peer that arrives after the others finished gets everything from peers.
    const [late] = await peers(1, [node.url]);
    const lateBefore = registry.blobBytesSent();
    expect(await late!.pull(registry.url, 'test/swarm', digest)).toBe(digest);
    expect(registry.blobBytesSent() - lateBefore).toBe(0);
    expect(late!.agent.totals).toEqual({ peer: layer.blob.length, seed: 0, upstream: 0 });
    // The seed was done, so the supernode vouched for the hash of the blob's piece-hash list: the
    // late peer asked its parents for the list (pollen_hashes) and took every hash from it, with no
    // proof to check, and can hand the list on in its turn.
    const lateSource = late!.agent.pieces.source(digest)!;
    expect(lateSource.proof(0)).toBeUndefined();
    expect(lateSource.hashes()).toEqual(swarm[0]!.agent.pieces.source(digest)!.hashes());
    expect(lateSource.hashes()?.length).toBe(lateSource.pieceCount * 32);
  }, 180_000);

  it('a sync answer carries only the piece hashes the peer does not know yet; a bad count is clamped', async () => {
    const { node, client, digest, meta } = await apiPeerWithTask('p1');
    const sync = (knownHashes?: unknown) => client.sync(node.url, digest, { peerId: 'p1', have: [], wantSeed: 0, badParents: [], knownHashes } as never);
    // The seed fetches the blob once the task exists; wait until every hash is known. The client
    // asks for trimmed answers (trimHashes): none ends with the null of a hash the seed lacks.
    const lasts: Array<string | null | undefined> = [];
    await waitFor(async () => {
      const { hashes } = await sync(0);
      lasts.push(hashes.at(-1));
      return hashes.length === meta.pieceCount && hashes.every((h) => typeof h === 'string');
    }, 'every piece hash', 60_000);
    expect(lasts).not.toContain(null);
    const all = await sync(0);
    expect(all.hashesFrom).toBe(0);
    expect(all.hashes).toHaveLength(meta.pieceCount);
    const rest = await sync(3);
    expect(rest.hashesFrom).toBe(3);
    expect(rest.hashes).toEqual(all.hashes.slice(3));
    expect((await sync(meta.pieceCount)).hashes).toEqual([]);
    for (const [bad, from] of [[-5, 0], [1e9, meta.pieceCount], [2.5, 0]] as const) {
      const r = await sync(bad);
      // No hashes to send: the (terse) answer names no start either.
      expect(r.hashesFrom).toBe(from === meta.pieceCount ? undefined : from);
      expect(r.hashes).toHaveLength(meta.pieceCount - from);
    }
    // Not a number at all: the body schema refuses it.
    await expect(sync('x')).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
  });

  it('a supernode paces its peers: each answer asks the wait until the next free slot of --sync-rate a second, shown in /metrics', async () => {
    const { node, client, digest } = await apiPeerWithTask('p1', undefined, 4);
    const body = (peerId: string) => ({ peerId, have: [], wantSeed: 0, badParents: [] });
    // p2, p3, a latecomer and 20 more ids a single member registers, each with the task (no sync yet: only syncs count).
    const others = new Map<string, SupernodeClient>();
    for (const peerId of ['p2', 'p3', 'late', ...Array.from({ length: 20 }, (_, k) => `sybil${k}`)]) {
      const c = new SupernodeClient({}, { urls: [node.url], secret: SECRET, timeoutMs: 5_000 });
      cleanups.push(() => c.close());
      await c.register(node.url, { peerId, wireAddr: '127.0.0.1:1', uploadSlots: 1, holdings: [] });
      await c.createTask(node.url, { peerId, digest, upstream: { registry: registry.host, name: 'test/swarm' } });
      others.set(peerId, c);
    }
    const sync = async (peerId: string): Promise<{ ms: number | undefined; sent: number; answered: number }> => {
      const sent = Date.now();
      const ms = (await (peerId === 'p1' ? client : others.get(peerId)!).sync(node.url, digest, body(peerId))).syncMs;
      return { ms, sent, answered: Date.now() };
    };
    // The status page counts peers per window of the supernode's clock (Date.now()): start at the top of one.
    const into = Date.now() % SYNC_PACE_WINDOW_MS;
    if (into > 200) await new Promise((r) => setTimeout(r, SYNC_PACE_WINDOW_MS - into + 20));
    // 4 a second: slots 250 ms apart. The line is idle, so the first sync is asked no wait and holds slot 0.
    const first = await sync('p1');
    expect(first.ms).toBeUndefined();
    // The k-th slot is 250 k ms after the first sync was handled; each answer asks the wait from when it was handled.
    const expectSlot = (r: { ms: number | undefined; sent: number; answered: number }, k: number): void => {
      expect(r.ms).toBeGreaterThanOrEqual(k * 250 + first.sent - r.answered - 1);
      expect(r.ms).toBeLessThanOrEqual(k * 250 + first.answered - r.sent);
    };
    expectSlot(await sync('p2'), 1);
    expectSlot(await sync('p3'), 2);
    // p1's slot has passed: it takes the next free one; asked again before it, it keeps that one.
    expectSlot(await sync('p1'), 3);
    expectSlot(await sync('p1'), 3);
    // Busy heartbeats slow down with the syncs: four waits apart (the line runs ~1 s ahead).
    const beat = await client.heartbeat(node.url, 'p1');
    expect(beat?.busyHeartbeatMs).toBeGreaterThan(3_000);
    expect(beat?.busyHeartbeatMs).toBeLessThanOrEqual(4_000);
    const metrics = await (await fetch(`${node.adminUrl}/metrics`)).text();
    expect(Number(/^pollen_supernode_sync_pace_seconds (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0.75);
    expect(metrics).toMatch(/^pollen_supernode_syncing_peers 3$/m);
    // The answers' bytes were counted: the mean starts at 1,000, and these answers carry every hash
    // of the layer (the syncs say no knownHashes) and the HTTP around them.
    const answerBytes = Number(/^pollen_supernode_sync_answer_bytes (\S+)$/m.exec(metrics)?.[1]);
    expect(answerBytes).toBeGreaterThan(1_000);
    // A member syncing under many ids pushes the line to MAX_SYNC_PACE_MS, no further.
    for (let k = 0; k < 20; k++) await sync(`sybil${k}`);
    expect((await sync('late')).ms).toBe(MAX_SYNC_PACE_MS);
  });

  it('syncs of one turn go in one request, one a task, and each gets its own answer or error', async () => {
    const paths: string[] = [];
    const agent = new Agent({ connect: pskClientOptions(SECRET, 'api') });
    cleanups.push(() => agent.close());
    const counted = agent.compose((dispatch) => (opts, handler) => {
      paths.push(String(opts.path));
      return dispatch(opts, handler);
    });
    const { node, client, digest } = await apiPeerWithTask('p1', counted);
    const unknown = `sha256:${'0'.repeat(64)}` as Digest;
    const body = { have: [], wantSeed: 0, badParents: [] };
    paths.length = 0;
    const [known, missing] = await Promise.allSettled([client.sync(node.url, digest, body), client.sync(node.url, unknown, body)]);
    expect(paths).toEqual([API.syncs]);
    expect(known.status).toBe('fulfilled');
    expect(known.status === 'fulfilled' && Array.isArray(known.value.parents)).toBe(true);
    expect(missing).toMatchObject({ status: 'rejected', reason: { code: 'ERR_NOT_FOUND' } });
    // One asked while a request is out waits for it and goes with whatever else came meanwhile.
    paths.length = 0;
    const first = client.sync(node.url, digest, body);
    await new Promise((r) => setImmediate(r));
    const later = [client.sync(node.url, digest, body), client.sync(node.url, unknown, body).catch(() => undefined)];
    await Promise.all([first, ...later]);
    expect(paths).toEqual([API.syncs, API.syncs]);
    // The same task twice in a turn: one sync of it a request (the supernode refuses a repeat), each answered.
    paths.length = 0;
    const twice = await Promise.all([client.sync(node.url, digest, body), client.sync(node.url, digest, body)]);
    expect(twice.every((a) => Array.isArray(a.parents))).toBe(true);
    expect(paths).toEqual([API.syncs, API.syncs]);
  });

  it('a parent reported slow still counts as a holder; one reported corrupt does not, and the seed serves its pieces', async () => {
    const { node, client, digest, meta } = await apiPeerWithTask('asker');
    const all = Bitfield.full(meta.pieceCount).toBase64();
    // Another peer: its own client, so its own token.
    const holder = new SupernodeClient({}, { urls: [node.url], secret: SECRET, timeoutMs: 5_000 });
    cleanups.push(() => holder.close());
    await holder.register(node.url, { peerId: 'holder', wireAddr: '127.0.0.1:2', uploadSlots: 1, holdings: [{ digest, pieces: all }] });
    const sync = (report: { badParents?: string[]; corruptParents?: string[] }) =>
      client.sync(node.url, digest, { peerId: 'asker', have: [], wantSeed: 3, badParents: [], ...report });
    const before = await sync({});
    expect(before.seedGrants).toEqual([]);
    expect(before.parents.map((p) => p.peerId)).toEqual(['holder']);
    expect((await sync({ badParents: ['holder', 'holder'] })).seedGrants).toEqual([]);
    expect((await sync({ corruptParents: ['holder'] })).seedGrants.length).toBeGreaterThan(0);
  });

  it("a task created with a first sync comes with that sync's answer: the holders as parents, a slot of the pacing; without one, the metainfo alone", async () => {
    const { node } = await startSupernode({ upstream: registry.url, secret: SECRET, syncRate: 4 });
    cleanups.push(() => node.close());
    const digest = layer.descriptor.digest as Digest;
    const upstream = { registry: registry.host, name: 'test/swarm' };
    const member = async (peerId: string, holdings: Array<{ digest: Digest; pieces: string }> = []) => {
      const c = new SupernodeClient({}, { urls: [node.url], secret: SECRET, timeoutMs: 5_000 });
      cleanups.push(() => c.close());
      await c.register(node.url, { peerId, wireAddr: `127.0.0.1:${10 + cleanups.length}`, uploadSlots: 1, holdings });
      return c;
    };
    // A holder of the whole blob registers before anyone created the task.
    const pieceCount = pieceCountFor(layer.blob.length, pieceSizeFor(layer.blob.length));
    await member('holder', [{ digest, pieces: Bitfield.full(pieceCount).toBase64() }]);
    const asker = await member('asker');
    asker.reportWith(() => ({ uploadedBytes: 0 }));
    const sent = Date.now();
    const answer = await asker.createTask(node.url, { digest, upstream, first: { wantSeed: 2 } });
    // The seed has only begun the blob: no piece hashes are vouched for yet.
    expect(answer.hashList).toBeUndefined();
    // It carried the heartbeat's report, as a sync batch does: the peer's next beat may wait.
    expect(answer.reported).toBe(true);
    expect(asker.lastReportAt(node.url)).toBeGreaterThanOrEqual(sent);
    expect(answer.pieceCount).toBe(pieceCount);
    expect(answer.first?.parents.map((p) => p.peerId)).toEqual(['holder']);
    expect(answer.first?.seedGrants).toEqual([]);
    // The hashes came with the metainfo: the schedule repeats none of them.
    expect(answer.first?.hashes).toEqual([]);
    // Packed on the wire (the client asks terse), read back as a hash or null a piece.
    expect(answer.hashes).toHaveLength(pieceCount);
    expect(answer.hashes.every((h) => h === null || /^[0-9a-f]{64}$/.test(h))).toBe(true);
    // It took the idle line's first slot; the next peer's creation is asked to wait for the second, 250 ms on.
    expect(answer.first?.syncMs).toBeUndefined();
    const next = await (await member('next')).createTask(node.url, { digest, upstream, first: { wantSeed: 1 } });
    expect(next.first?.syncMs).toBeGreaterThanOrEqual(250 - (Date.now() - sent) - 1);
    expect(next.first?.syncMs).toBeLessThanOrEqual(250);
    // Without `first` (an older peer) the answer is the metainfo, as before.
    const plainClient = await member('plain');
    plainClient.reportWith(() => ({ uploadedBytes: 0 }));
    const plain = await plainClient.createTask(node.url, { digest, upstream });
    expect(plain).not.toHaveProperty('first');
    expect(plain).not.toHaveProperty('reported');
    expect(plainClient.lastReportAt(node.url)).toBe(0);
    expect(plain.hashes).toHaveLength(pieceCount);
    // Both first syncs count as syncs answered.
    const metrics = await (await fetch(`${node.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^pollen_supernode_syncs_total 2$/m);
    // The first sync's wish is bounded like a sync's: refused, the client asks again without it (as of a
    // supernode that knows no \`first\`) and gets the metainfo alone.
    const greedy = await (await member('greedy')).createTask(node.url, { digest, upstream, first: { wantSeed: 1_000 } });
    expect(greedy).not.toHaveProperty('first');
    expect(greedy.pieceCount).toBe(pieceCount);
    // Asked without hashes (a peer that reads piece proofs): the same task, every hash null, though the seed knows them.
    let known = plain;
    for (const until = Date.now() + 10_000; !known.hashes.some((h) => h !== null) && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 100));
      known = await plainClient.createTask(node.url, { digest, upstream });
    }
    expect(known.hashes.some((h) => h !== null)).toBe(true);
    const bare = await (await member('bare')).createTask(node.url, { digest, upstream, first: { wantSeed: 1 }, withoutHashes: true });
    expect(bare.pieceCount).toBe(pieceCount);
    expect(bare.hashes).toEqual(new Array(pieceCount).fill(null));
  });

  it('a peer that joins once the seed holds the blob verified commits it on the piece hashes the supernode vouched for, without hashing it again', async () => {
    const { node } = await startSupernode({ upstream: registry.url, secret: SECRET });
    cleanups.push(() => node.close());
    const digest = layer.descriptor.digest as Digest;
    const upstream = { registry: registry.host, name: 'test/swarm' };
    const [first] = await peers(1, [node.url]);
    expect(await first!.pull(registry.url, 'test/swarm', digest)).toBe(digest);
    // The list the supernode vouches for once its seed committed the blob: the blob's piece hashes, here computed apart.
    const probe = new SupernodeClient({}, { urls: [node.url], secret: SECRET, timeoutMs: 5_000 });
    cleanups.push(() => probe.close());
    await probe.register(node.url, { peerId: 'probe', wireAddr: '127.0.0.1:9', uploadSlots: 1, holdings: [] });
    let answer = await probe.createTask(node.url, { digest, upstream });
    for (const until = Date.now() + 10_000; answer.hashList === undefined && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await probe.createTask(node.url, { digest, upstream });
    }
    const hashes = Array.from({ length: answer.pieceCount }, (_, i) => {
      const { start, length } = pieceRange(answer.size, answer.pieceSize, i);
      return createHash('sha256').update(layer.blob.subarray(start, start + length)).digest('hex');
    });
    expect(answer.hashList).toBe(pieceHashList({ digest, pieceSize: answer.pieceSize, hashes }));
    // A transfer created before the seed was done asks its syncs for the list (batched, on the sync channel).
    const sync = { have: [], wantSeed: 0, badParents: [] };
    expect((await probe.sync(node.url, digest, { ...sync, wantHashList: true })).hashList).toBe(answer.hashList);
    expect((await probe.sync(node.url, digest, sync)).hashList).toBeUndefined();
    // Two late peers: one takes the list as sent, the other is sent a list that is not the blob's.
    const [late, misled] = await peers(2, [node.url]);
    const seen = new Map([late!, misled!].map((p) => [p, watchDigests(p)] as const));
    const create = misled!.agent.client.createTask.bind(misled!.agent.client);
    misled!.agent.client.createTask = async (url, body) => ({ ...(await create(url, body)), hashList: 'f'.repeat(64) });
    expect(await late!.pull(registry.url, 'test/swarm', digest)).toBe(digest);
    expect(await misled!.pull(registry.url, 'test/swarm', digest)).toBe(digest);
    expect(seen.get(late!)).toEqual({ forgone: 1, vouched: [true] });
    // Not vouched: the commit hashed the whole file, and the blob is right.
    expect(seen.get(misled!)).toEqual({ forgone: 1, vouched: [false] });
    for (const p of [late!, misled!]) expect(sha256Digest(await buffer(await p.store.read(digest)))).toBe(digest);
  }, 120_000);

  it('a parent that serves corrupted pieces is banned and every pull is still correct', async () => {
    const { node } = await startSupernode({ upstream: registry.url, secret: SECRET });
    cleanups.push(() => node.close());
    const digest = layer.descriptor.digest as Digest;
    const [bad] = await peers(1, [node.url]);
    expect(await bad!.pull(registry.url, 'test/swarm', digest)).toBe(digest);
    // Test-only fault: from now on this peer flips a byte in every block it serves.
    const source = bad!.agent.pieces.source.bind(bad!.agent.pieces);
    bad!.agent.pieces.source = (d) => {
      const s = source(d);
      return s && { ...s, read: async (o: number, l: number) => {
        const b = Buffer.from(await s.read(o, l));
        b[0] = b[0]! ^ 0xff;
        return b;
      } };
    };
    const swarm = await peers(3, [node.url], { timings: { noProgressMs: 30_000 } });
    const got = await Promise.all(swarm.map((p) => p.pull(registry.url, 'test/swarm', digest)));
    expect(new Set(got)).toEqual(new Set([digest]));
    expect(swarm.some((p) => p.agent.parentBans.isBanned(bad!.agent.peerId))).toBe(true);
    expect(swarm.reduce((n, p) => n + p.agent.totals.upstream, 0)).toBe(0);
  }, 180_000);

  it('a restarted peer resumes from the pieces it verified before', async () => {
    const { node } = await startSupernode({ upstream: registry.url, secret: SECRET });
    cleanups.push(() => node.close());
    const digest = layer.descriptor.digest as Digest;
    // The only parent uploads slowly, so the second peer is still mid-download when it stops.
    const [slow] = await peers(1, [node.url], { uploadBytesPerSecond: 8 << 20 });
    expect(await slow!.pull(registry.url, 'test/swarm', digest)).toBe(digest);
    const dir = await mkdtemp(join(tmpdir(), 'pollen-resume-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const first = await startPeer([node.url], { dir, secret: SECRET });
    const pulling = first.pull(registry.url, 'test/swarm', digest).catch((e: Error) => e);
    const deadline = Date.now() + 30_000;
    while (first.agent.totals.peer + first.agent.totals.seed < 12 << 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await first.close();
    expect(await pulling).toBeInstanceOf(Error);
    const held = first.agent.totals.peer + first.agent.totals.seed;
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(layer.blob.length);

    const again = await startPeer([node.url], { dir, secret: SECRET });
    cleanups.push(() => again.close());
    // A transfer that resumes asks for the hashes: it checks its saved pieces against them.
    const bare: Array<boolean | undefined> = [];
    const create = again.agent.client.createTask.bind(again.agent.client);
    again.agent.client.createTask = (url, body) => {
      bare.push(body.withoutHashes);
      return create(url, body);
    };
    expect(await again.pull(registry.url, 'test/swarm', digest)).toBe(digest);
    expect(bare).toEqual([undefined]);
    const fetched = again.agent.totals.peer + again.agent.totals.seed + again.agent.totals.upstream;
    expect(fetched).toBeLessThanOrEqual(layer.blob.length - held);
  }, 180_000);

  it("layers pulled together share the host's seed leases from their first schedule on", async () => {
    const { node } = await startSupernode({ upstream: registry.url, secret: SECRET });
    cleanups.push(() => node.close());
    const [peer] = await peers(1, [node.url]);
    const client = peer!.agent.client;
    const asked: Array<number | undefined> = [];
    const bare: Array<boolean | undefined> = [];
    const create = client.createTask.bind(client);
    client.createTask = (url, body) => {
      asked.push(body.first?.wantSeed);
      bare.push(body.withoutHashes);
      return create(url, body);
    };
    const digests = [layer.descriptor.digest as Digest, second.descriptor.digest as Digest];
    expect(await Promise.all(digests.map((d) => peer!.pull(registry.url, 'test/swarm', d)))).toEqual(digests);
    // The host's two leases: the first creation asks both, the second, under way or started beside it, one.
    expect(asked.sort()).toEqual([1, HOST_SEED_LEASES]);
    // Fresh transfers from a supernode that signs piece proofs: their metainfo comes without hashes.
    expect(bare).toEqual([true, true]);
  }, 180_000);

  it("a parent whose upload slots all serve one blob gives another blob's child a slot, choking one of the first, and every pull completes", async () => {
    const { node } = await startSupernode({ upstream: registry.url, secret: SECRET });
    cleanups.push(() => node.close());
    const a = layer.descriptor.digest as Digest;
    const b = second.descriptor.digest as Digest;
    // Two slots, and slow enough that the children of the large layer hold both for seconds.
    const [holder] = await peers(1, [node.url], { uploadSlots: 2, uploadBytesPerSecond: 8 << 20 });
    expect(await holder!.pull(registry.url, 'test/swarm', a)).toBe(a);
    expect(await holder!.pull(registry.url, 'test/swarm', b)).toBe(b);
    const [c1, c2, c3] = await peers(3, [node.url]);
    const pullsA = [c1!.pull(registry.url, 'test/swarm', a), c2!.pull(registry.url, 'test/swarm', a)];
    await waitFor(async () => c1!.agent.totals.peer > 0 && c2!.agent.totals.peer > 0, 'both children of the large layer served by the holder', 30_000);
    // The holder alone has the small layer: without a slot its child would wait choked, drop the
    // holder after a second, and be served by the seed once starved (or by the registry).
    expect(await c3!.pull(registry.url, 'test/swarm', b)).toBe(b);
    expect(c3!.agent.totals).toEqual({ peer: second.blob.length, seed: 0, upstream: 0 });
    expect(await Promise.all(pullsA)).toEqual([a, a]);
    for (const c of [c1!, c2!]) {
      expect((await c.store.stat(a))?.size).toBe(layer.blob.length);
      expect(c.agent.totals.upstream).toBe(0);
    }
  }, 180_000);

  it('a parent that evicts a blob mid-upload closes its children without banning them, and the children still complete', async () => {
    const { node } = await startSupernode({ upstream: registry.url, secret: SECRET });
    cleanups.push(() => node.close());
    const digest = layer.descriptor.digest as Digest;
    const [holder] = await peers(1, [node.url], { uploadBytesPerSecond: 8 << 20 });
    expect(await holder!.pull(registry.url, 'test/swarm', digest)).toBe(digest);
    const [child] = await peers(1, [node.url]);
    const pulling = child!.pull(registry.url, 'test/swarm', digest);
    const deadline = Date.now() + 30_000;
    while (child!.agent.totals.peer < 4 << 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(child!.agent.totals.peer).toBeGreaterThan(0);
    // What the store's eviction does: the holder stops offering the blob while the child is asking.
    holder!.agent.forget(digest);
    expect(await pulling).toBe(digest);
    expect(holder!.agent.wireBans.isBanned('127.0.0.1')).toBe(false);
    expect(child!.agent.wireBans.isBanned('127.0.0.1')).toBe(false);
  }, 180_000);

  it('pulls complete when the supernode stops mid-pull (from the parents they know, else the registry), and use P2P again after it restarts', async () => {
    const data = await mkdtemp(join(tmpdir(), 'pollen-sn-'));
    cleanups.push(() => rm(data, { recursive: true, force: true }));
    const port = await freePort();
    let { node } = await startSupernode({ upstream: registry.url, data, listen: `127.0.0.1:${port}`, secret: SECRET });
    const digest = layer.descriptor.digest as Digest;
    const [slow] = await peers(1, [node.url], { uploadBytesPerSecond: 8 << 20 });
    expect(await slow!.pull(registry.url, 'test/swarm', digest)).toBe(digest);
    const swarm = await peers(2, [node.url], { timings: { supernodeDeadMs: 1_500 } });
    const pulls = swarm.map((p) => p.pull(registry.url, 'test/swarm', digest));
    const deadline = Date.now() + 30_000;
    while (swarm.every((p) => p.agent.totals.peer === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await node.close();
    expect(await Promise.all(pulls)).toEqual([digest, digest]);
    for (const p of swarm) expect(p.agent.totals.peer + p.agent.totals.seed + p.agent.totals.upstream).toBe(layer.blob.length);

    ({ node } = await startSupernode({ upstream: registry.url, data, listen: `127.0.0.1:${port}`, secret: SECRET }));
    cleanups.push(() => node.close());
    // The earlier peers register again with what they hold (an idle one at its next heartbeat, up
    // to the idle period later); the supernode rebuilds availability from that.
    const restarted = node;
    await waitFor(async () => {
      const status = (await (await fetch(`${restarted.adminUrl}/api/v1/status`)).json()) as { peers: Array<{ id: string }> };
      const known = new Set(status.peers.map((p) => p.id));
      return [slow!, ...swarm].every((p) => known.has(p.agent.peerId));
    }, 'the restarted supernode knows the earlier peers', 30_000);
    const [late] = await peers(1, [node.url]);
    const before = registry.blobBytesSent();
    expect(await late!.pull(registry.url, 'test/swarm', digest)).toBe(digest);
    expect(late!.agent.totals.peer).toBe(layer.blob.length);
    expect(registry.blobBytesSent() - before).toBe(0);
  }, 180_000);

  it('a large cluster gets small pieces: holders of the whole blob in the other layout serve it, with proofs bound to the layout', async () => {
    // Live peers from 3 on: the two first pullers get the default layout; after a restart that lost
    // the seed's metainfo, the blob begins again in the small one while they hold it whole.
    const port = await freePort();
    const data = await mkdtemp(join(tmpdir(), 'pollen-sn-'));
    cleanups.push(() => rm(data, { recursive: true, force: true }));
    let { node } = await startSupernode({ upstream: registry.url, data, listen: `127.0.0.1:${port}`, secret: SECRET, smallPiecesFrom: 3 });
    const digest = layer.descriptor.digest as Digest;
    const size = layer.blob.length;
    const small = pieceSizeForSwarm(size, 3, 3);
    expect(small).toBeLessThan(pieceSizeFor(size));
    const holders = await peers(2, [node.url]);
    expect(await Promise.all(holders.map((p) => p.pull(registry.url, 'test/swarm', digest)))).toEqual([digest, digest]);
    const probe = new SupernodeClient({}, { urls: [node.url], secret: SECRET, timeoutMs: 5_000 });
    cleanups.push(() => probe.close());
    const key = new ProofVerifier(String((await probe.register(node.url, { peerId: 'key-reader', wireAddr: '127.0.0.1:1', uploadSlots: 1, holdings: [] })).pieceKey));
    const defaultCount = pieceCountFor(size, pieceSizeFor(size));
    for (const p of holders) {
      const source = p.agent.pieces.source(digest)!;
      expect(source.pieceCount).toBe(defaultCount);
      for (let i = 0; i < defaultCount; i++) expect(key.verify(digest, source.proof(i)!)).toBe(true);
    }
    await node.close();
    await rm(join(data, 'seed'), { recursive: true, force: true });
    await rm(join(data, 'meta'), { recursive: true, force: true });

    ({ node } = await startSupernode({ upstream: registry.url, data, listen: `127.0.0.1:${port}`, secret: SECRET, smallPiecesFrom: 3 }));
    cleanups.push(() => node.close());
    const restarted = node;
    await waitFor(async () => {
      const status = (await (await fetch(`${restarted.adminUrl}/api/v1/status`)).json()) as { peers: Array<{ id: string }> };
      const known = new Set(status.peers.map((p) => p.id));
      return holders.every((p) => known.has(p.agent.peerId));
    }, 'the restarted supernode knows the holders', 30_000);
    const [late] = await peers(1, [node.url]);
    expect(await late!.pull(registry.url, 'test/swarm', digest)).toBe(digest);
    expect(late!.agent.totals.peer + late!.agent.totals.seed + late!.agent.totals.upstream).toBe(size);
    // The holders served it in the small layout the late peer named, more of it than the seed did.
    expect(late!.agent.totals.peer).toBeGreaterThan(late!.agent.totals.seed);
    const smallCount = pieceCountFor(size, small);
    expect(late!.agent.pieces.source(digest, small)!.pieceCount).toBe(smallCount);
    // The seed's proofs of the small layout (same key: piece-key.pem was kept) check only with that
    // layout named, and a proof of the default layout does not check in the small one.
    const reader = new SupernodeClient({}, { urls: [node.url], secret: SECRET, timeoutMs: 5_000 });
    cleanups.push(() => reader.close());
    await reader.register(node.url, { peerId: 'seed-reader', wireAddr: '127.0.0.1:1', uploadSlots: 1, holdings: [] });
    const meta = await reader.createTask(node.url, { peerId: 'seed-reader', digest, upstream: { registry: registry.host, name: 'test/swarm' } });
    expect(meta.pieceSize).toBe(small);
    const answer = await reader.seedPiece(node.url, digest, 1, AbortSignal.timeout(30_000));
    for await (const c of answer.body) void c;
    const proof = { index: 1, hash: answer.pieceHash()!, signature: answer.pieceSignature!()! };
    expect(key.verify(digest, proof, small)).toBe(true);
    expect(key.verify(digest, proof)).toBe(false);
    expect(key.verify(digest, holders[0]!.agent.pieces.source(digest)!.proof(1)!, small)).toBe(false);
  }, 180_000);
});
