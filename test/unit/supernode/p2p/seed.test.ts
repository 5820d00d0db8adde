// The seed with in-memory parts (a fake registry behind the fetcher seam, a manual clock) and, where
// files are the point, a real FsContentStore: which registries and names it reaches, what of the
// caller's reaches the registry, who gets metainfo and pieces, sizes, the admission cache, the
// memory budget, and attempts that fail leaving nothing that breaks the next one.
import { BODY_CHUNK_BYTES } from '../../../../src/pooled-body.ts';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import type { ContentStore } from '../../../../src/content-store.ts';
import { MemoryKv } from '../../../../src/db.ts';
import type { Digest } from '../../../../src/digest.ts';
import { FsContentStore } from '../../../../src/fs-content-store.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { isValidName } from '../../../../src/oci/names.ts';
import { RegistryHosts } from '../../../../src/oci/registry-hosts.ts';
import { DEFAULT_PIECE_BYTES, layoutFor, SMALL_PIECE_BYTES } from '../../../../src/p2p/metainfo.ts';
import type { MetainfoBody, TaskRequest } from '../../../../src/p2p/supernode-api.ts';
import { Seed, type SeedOptions, type SeedTask } from '../../../../supernode/p2p/seed.ts';
import { FakeRegistry } from './seed-fakes.ts';

const logger = pino({ level: 'silent' });
const MiB = 1 << 20;
const REG = 'registry.example';
const REG_URL = 'https://mirror-of-registry.internal:8443';
const DEFAULT_URL = 'http://127.0.0.1:5000';
const ALICE = `Basic ${Buffer.from('alice:wonderland').toString('base64')}`;
const BOB = 'Bearer bobs.token';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(options: Partial<SeedOptions> & { store?: ContentStore; kv?: MemoryKv<MetainfoBody>; livePeers?: () => number } = {}) {
  const registry = new FakeRegistry();
  const clock = new ManualClock(1_000);
  const hosts = new RegistryHosts({ defaultUpstream: DEFAULT_URL, registries: new Map([[REG, REG_URL]]) });
  const store = options.store ?? new MemoryContentStore();
  const kv = options.kv ?? new MemoryKv<MetainfoBody>();
  const seed = new Seed({ store, kv, logger, hosts, clock, fetcher: registry, ...(options.livePeers ? { livePeers: options.livePeers } : {}) }, options);
  cleanups.push(() => seed.close());
  return { seed, registry, clock, store, kv };
}

function task(peerId: string, digest: Digest, upstream: Partial<TaskRequest['upstream']> = {}, sizeHint?: number): TaskRequest {
  return { peerId, digest, sizeHint, upstream: { registry: REG, name: 'private/app', ...upstream } };
}

/** The task's state once its fetch has ended (the seed moves it right after the partial settles). */
async function settled(t: SeedTask): Promise<SeedTask['state']['name']> {
  if (t.state.name === 'fetching') await t.state.partial.settledPromise();
  // What follows the commit (real files: fsync, rename, the metainfo write) can take a while on a busy machine.
  const deadline = Date.now() + 5000;
  while (t.state.name === 'fetching' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  return t.state.name;
}

async function readAll(seed: Seed, peerId: string, t: SeedTask): Promise<Buffer> {
  const out: Buffer[] = [];
  for (let i = 0; i < t.meta.pieceCount; i++) {
    const { body } = await seed.readPiece(peerId, t.meta.digest, i);
    for await (const c of body.chunks(() => Buffer.allocUnsafe(BODY_CHUNK_BYTES))) out.push(Buffer.from(c));
  }
  return Buffer.concat(out);
}

describe('Seed: which registry, which name, what of the caller reaches the registry', () => {
  it('reaches a registry by its configured host key only, at the configured URL; an unknown key or a URL is refused before any request', async () => {
    const { seed, registry } = setup();
    const digest = registry.add({ bytes: randomBytes(1000), name: 'private/app' });
    await expect(seed.openTask(task('p', digest, { registry: 'evil.example:5999' }))).rejects.toMatchObject({ code: 'ERR_UNKNOWN_UPSTREAM', message: expect.stringMatching(/--registry evil.example:5999=URL/) });
    await expect(seed.openTask(task('p', digest, { registry: 'http://127.0.0.1:5999' }))).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    await expect(seed.openTask(task('p', digest, { registry: '169.254.169.254' }))).rejects.toMatchObject({ code: 'ERR_UNKNOWN_UPSTREAM' });
    expect(registry.heads).toEqual([]);
    expect(registry.gets).toEqual([]);
    const t = await seed.openTask(task('p', digest));
    expect(await settled(t)).toBe('complete');
    expect(registry.heads.map((h) => h.source.baseUrl)).toEqual([REG_URL]);
    expect(registry.gets.map((h) => h.source.baseUrl)).toEqual([REG_URL]);
    // The default upstream is reached by its own host.
    const other = registry.add({ bytes: randomBytes(10), name: 'ns/img' });
    await seed.openTask(task('p', other, { registry: '127.0.0.1:5000', name: 'ns/img' }));
    expect(registry.heads.at(-1)!.source.baseUrl).toBe(DEFAULT_URL);
  });

  it('refuses names outside the distribution grammar (ERR_INVALID_NAME) and sends nothing', async () => {
    const { seed, registry } = setup();
    const digest = registry.add({ bytes: randomBytes(10), name: 'private/app' });
    for (const name of ['../v2/_catalog', 'Private/App', 'a//b', 'a/b?ns=x', 'a/b#x', 'a%2fb', 'a/../b', ' a', 'x'.repeat(256)]) {
      await expect(seed.openTask(task('p', digest, { name })), name).rejects.toMatchObject({ code: expect.stringMatching(/ERR_INVALID_NAME|ERR_INVALID_REQUEST/) });
    }
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 40 }), async (name) => {
        fc.pre(!isValidName(name));
        await expect(seed.openTask(task('p', digest, { name }))).rejects.toMatchObject({ code: 'ERR_INVALID_NAME' });
      }),
      { numRuns: 300 },
    );
    expect(registry.heads).toEqual([]);
  });

  it('passes the caller\'s Authorization only when it is one plain Basic or Bearer credential', async () => {
    const { seed, registry } = setup();
    const digest = registry.add({ bytes: randomBytes(10), name: 'private/app', readers: new Set([ALICE, BOB]) });
    for (const authorization of ['Basic abc\r\nX-Injected: 1', 'Digest username="a"', 'Bearer a b', 'Bearer', 'basic\tabc', `Bearer ${'a'.repeat(9000)}`, 'Negotiate abc']) {
      await expect(seed.openTask(task('p', digest, { authorization }))).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    }
    expect(registry.heads).toEqual([]);
    await seed.openTask(task('p', digest, { authorization: ALICE }));
    await seed.openTask(task('q', digest, { authorization: BOB }));
    expect(registry.heads.map((h) => h.source)).toEqual([
      { registry: REG, baseUrl: REG_URL, name: 'private/app', authorization: ALICE },
      { registry: REG, baseUrl: REG_URL, name: 'private/app', authorization: BOB },
    ]);
  });
});

describe('Seed: metainfo and pieces only for requesters the registry admits', () => {
  it('a requester without credentials gets no task of a private blob; one with them does, and only admitted peers get pieces', async () => {
    const { seed, registry } = setup();
    const bytes = randomBytes(3 * DEFAULT_PIECE_BYTES + 7);
    const digest = registry.add({ bytes, name: 'private/app', readers: new Set([ALICE]) });
    await expect(seed.openTask(task('anon', digest))).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    await expect(seed.openTask(task('bob', digest, { authorization: BOB }))).rejects.toMatchObject({ code: 'ERR_DENIED' });
    // Another repository, even one the requester may read, does not open this blob.
    await expect(seed.openTask(task('alice', digest, { name: 'public/app', authorization: ALICE }))).rejects.toMatchObject({ code: 'ERR_BLOB_UNKNOWN' });
    expect(seed.get(digest)).toBeUndefined();
    expect(registry.gets).toEqual([]);

    const t = await seed.openTask(task('alice', digest, { authorization: ALICE }));
    expect(await settled(t)).toBe('complete');
    expect(seed.isAdmitted('alice', digest)).toBe(true);
    expect(createHash('sha256').update(await readAll(seed, 'alice', t)).digest('hex')).toBe(digest.slice(7));
    for (const peer of ['anon', 'bob', 'stranger']) {
      expect(seed.isAdmitted(peer, digest)).toBe(false);
      await expect(seed.readPiece(peer, digest, 0)).rejects.toMatchObject({ code: 'ERR_SEED_NOT_ADMITTED', kind: 'denied' });
    }
    // The same answer for a blob the seed does not have: no presence oracle.
    await expect(seed.readPiece('anon', `sha256:${'0'.repeat(64)}` as Digest, 0)).rejects.toMatchObject({ code: 'ERR_SEED_NOT_ADMITTED' });
    // Held and complete now: still refused without credentials.
    await expect(seed.openTask(task('anon', digest))).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    expect(registry.gets).toHaveLength(1);
  });

  it('an admission lapses when unused for idleMs, or when the peer leaves; another peer\'s admission stays', async () => {
    const { seed, registry, clock } = setup({ grants: { idleMs: 60_000 } });
    const digest = registry.add({ bytes: randomBytes(100), name: 'private/app', readers: new Set([ALICE]) });
    await settled(await seed.openTask(task('a', digest, { authorization: ALICE })));
    await seed.openTask(task('b', digest, { authorization: ALICE }));
    clock.advance(50_000);
    expect(seed.isAdmitted('a', digest)).toBe(true); // a use extends it
    clock.advance(50_000);
    expect(seed.isAdmitted('a', digest)).toBe(true);
    expect(seed.isAdmitted('b', digest)).toBe(false);
    seed.forgetPeer('a');
    expect(seed.isAdmitted('a', digest)).toBe(false);
  });

  it('a peer admitted on another\'s authority (a preheat job) opens the task without presenting credentials', async () => {
    const { seed, registry } = setup();
    const digest = registry.add({ bytes: randomBytes(100), name: 'private/app', readers: new Set([ALICE]) });
    // The job's credential: the seed fetches with it.
    await settled(await seed.ensure(seed.sourceOf({ registry: REG, name: 'private/app', authorization: ALICE }), digest, 100));
    await expect(seed.openTask(task('peer', digest, {}, 100))).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    seed.admit('peer', digest);
    const heads = registry.heads.length;
    expect((await seed.openTask(task('peer', digest, {}, 100))).meta.digest).toBe(digest);
    expect(registry.heads.length).toBe(heads);
    // Still the peer's size must be the blob's.
    await expect(seed.openTask(task('peer', digest, {}, 99))).rejects.toMatchObject({ code: 'ERR_SIZE_MISMATCH' });
  });

  it('caches a yes per (credential, registry, repository, digest) for ttlMs, never a no', async () => {
    const { seed, registry, clock } = setup({ admission: { ttlMs: 30_000 } });
    const a = registry.add({ bytes: randomBytes(100), name: 'private/app', readers: new Set([ALICE, BOB]) });
    const b = registry.add({ bytes: randomBytes(100), name: 'private/app', readers: new Set([ALICE]) });
    registry.add({ bytes: Buffer.from(randomBytes(100)), name: 'private/other', readers: new Set([ALICE]) });
    const aInOther = registry.add({ bytes: randomBytes(50), name: 'private/other', readers: new Set([ALICE]) });
    const src = (authorization: string | undefined, name = 'private/app', reg = REG) => seed.sourceOf({ registry: reg, name, ...(authorization ? { authorization } : {}) });
    await settled(await seed.ensure(src(ALICE), a));
    await seed.ensure(src(ALICE), a);
    await seed.ensure(src(ALICE), a);
    expect(registry.heads).toHaveLength(1);
    await seed.ensure(src(BOB), a); // another credential
    await settled(await seed.ensure(src(ALICE), b)); // another digest
    await settled(await seed.ensure(src(ALICE, 'private/other'), aInOther)); // another repository
    expect(registry.heads).toHaveLength(4);
    // Another registry with the same repository and credential is asked on its own.
    registry.blobs.set(a, { ...registry.blobs.get(a)!, name: 'private/app' });
    await seed.ensure(src(ALICE, 'private/app', '127.0.0.1:5000'), a);
    expect(registry.heads).toHaveLength(5);
    expect(registry.heads.at(-1)!.source.baseUrl).toBe(DEFAULT_URL);
    // A no is asked again every time.
    await expect(seed.ensure(src(undefined), a)).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    await expect(seed.ensure(src(undefined), a)).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    expect(registry.heads).toHaveLength(7);
    // After the TTL the registry is asked again, and a revoked reader is refused.
    clock.advance(29_999);
    await seed.ensure(src(BOB), a);
    expect(registry.heads).toHaveLength(7);
    clock.advance(1);
    registry.blobs.set(a, { ...registry.blobs.get(a)!, readers: new Set([ALICE]) });
    await expect(seed.ensure(src(BOB), a)).rejects.toMatchObject({ code: 'ERR_DENIED' });
    expect(registry.heads).toHaveLength(8);
  });
});

describe('Seed: sizes', () => {
  it('refuses a registry whose declared size differs from what the peer saw, and fetches nothing', async () => {
    const { seed, registry } = setup();
    const digest = registry.add({ bytes: randomBytes(1000), name: 'private/app' });
    await expect(seed.openTask(task('p', digest, {}, 999))).rejects.toMatchObject({ code: 'ERR_SIZE_MISMATCH' });
    // A registry that declares 400 GiB for what the manifest says is 1000 bytes.
    const lying = registry.add({ bytes: randomBytes(1000), name: 'private/app', declared: 400 * 1024 ** 3 });
    await expect(seed.openTask(task('p', lying, {}, 1000))).rejects.toMatchObject({ code: 'ERR_SIZE_MISMATCH' });
    expect(registry.gets).toEqual([]);
    expect(seed.get(digest)).toBeUndefined();
    expect(seed.get(lying)).toBeUndefined();
  });

  it('refuses a declared size above the cap (ERR_BLOB_TOO_LARGE), even with no size from the peer', async () => {
    const { seed, registry } = setup({ maxBlobBytes: 10 * MiB });
    const digest = registry.add({ bytes: randomBytes(1000), name: 'private/app', declared: 400 * 1024 ** 3 });
    await expect(seed.openTask(task('p', digest))).rejects.toMatchObject({ code: 'ERR_BLOB_TOO_LARGE', kind: 'too_large' });
    await expect(seed.openTask(task('p', digest, {}, 400 * 1024 ** 3))).rejects.toMatchObject({ code: 'ERR_BLOB_TOO_LARGE' });
    expect(registry.gets).toEqual([]);
  });

  it('refuses a GET whose length differs from the HEAD\'s before ingesting anything; a later pull works', async () => {
    const { seed, registry, store } = setup();
    const bytes = randomBytes(5000);
    const digest = registry.add({ bytes, name: 'private/app', getLength: 9 * 1024 ** 3 });
    await expect(seed.openTask(task('p', digest, {}, 5000))).rejects.toMatchObject({ code: 'ERR_SIZE_MISMATCH' });
    expect(registry.pulled).toBe(0);
    expect(seed.get(digest)).toBeUndefined();
    registry.blobs.get(digest)!.getLength = undefined;
    const t = await seed.openTask(task('p', digest, {}, 5000));
    expect(await settled(t)).toBe('complete');
    expect((await store.stat(digest))?.size).toBe(5000);
  });
});

describe('Seed: memory and failed attempts', () => {
  it('holds at most its buffer budget (plus a chunk per fetch) between the registry and the disk, however many blobs are in flight', async () => {
    const budget = 1 * MiB;
    const { seed, registry } = setup({ bufferBytes: budget });
    const blobs = Array.from({ length: 6 }, (_, i) => randomBytes(3 * MiB + i * 1000));
    const digests = blobs.map((bytes) => registry.add({ bytes, name: 'private/app' }));
    let written = (): number => 0;
    let maxHeld = 0;
    registry.onChunk = () => (maxHeld = Math.max(maxHeld, registry.pulled - written()));
    const tasks = await Promise.all(digests.map((d) => seed.openTask(task('p', d))));
    written = () => tasks.reduce((n, t) => n + (t.state.name === 'fetching' ? t.state.partial.available : t.state.name === 'complete' ? t.meta.size : 0), 0);
    expect(await Promise.all(tasks.map(settled))).toEqual(tasks.map(() => 'complete'));
    expect(registry.pulled).toBe(blobs.reduce((n, b) => n + b.length, 0));
    expect(maxHeld).toBeLessThanOrEqual(budget + (tasks.length + 1) * registry.chunkBytes);
    expect(seed.buffers.peakBytes).toBeLessThanOrEqual(budget);
    expect(seed.buffers.usedBytes).toBe(0);
  });

  it('a body longer than declared fails the attempt; the next pull of the same digest, at once, succeeds (real files)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pollen-seed-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const store = await FsContentStore.open(dir);
    const { seed, registry } = setup({ store });
    const bytes = randomBytes(2 * DEFAULT_PIECE_BYTES + 123);
    const digest = registry.add({ bytes, name: 'private/app', getLength: null, trailing: randomBytes(300_000) });
    const first = await seed.openTask(task('p', digest, {}, bytes.length));
    expect(await settled(first)).toBe('failed');
    expect(first.state).toMatchObject({ name: 'failed', error: { code: 'ERR_SIZE_MISMATCH' } });
    registry.blobs.get(digest)!.trailing = undefined;
    const again = await seed.openTask(task('p', digest, {}, bytes.length));
    expect(again).not.toBe(first);
    expect(await settled(again)).toBe('complete');
    expect((await store.stat(digest))?.size).toBe(bytes.length);
    expect(createHash('sha256').update(await readAll(seed, 'p', again)).digest('hex')).toBe(digest.slice(7));
    expect(seed.buffers.usedBytes).toBe(0);
  });

  it('a partial ingest file left by a crashed run, longer than the blob, does not break the pull (real files)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pollen-seed-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const bytes = randomBytes(DEFAULT_PIECE_BYTES + 5);
    const registry0 = new FakeRegistry();
    const digest = registry0.add({ bytes, name: 'private/app' });
    await mkdir(join(dir, 'ingest'), { recursive: true });
    await writeFile(join(dir, 'ingest', digest.slice(7)), randomBytes(3 * DEFAULT_PIECE_BYTES));
    const store = await FsContentStore.open(dir);
    const { seed, registry } = setup({ store });
    registry.blobs.set(digest, registry0.blobs.get(digest)!);
    await seed.start();
    const t = await seed.openTask(task('p', digest, {}, bytes.length));
    expect(await settled(t)).toBe('complete');
    expect((await store.stat(digest))?.size).toBe(bytes.length);
  });

  it('hashes a held blob again when its stored metainfo has another piece layout, without a registry GET', async () => {
    const blob = randomBytes(3 * DEFAULT_PIECE_BYTES + 1234);
    const store = new MemoryContentStore();
    const kv = new MemoryKv<MetainfoBody>();
    const { seed, registry } = setup({ store, kv });
    const digest = registry.add({ bytes: blob, name: 'private/app' });
    const ingest = await store.openIngest(digest);
    await ingest.writeAt(blob, 0);
    await ingest.commit(blob.length);
    // Metainfo written with 4 MiB pieces (the layout before DEFAULT_PIECE_BYTES changed): one piece.
    await kv.put(digest, { digest, size: blob.length, pieceSize: 4 << 20, pieceCount: 1, hashes: [createHash('sha256').update(blob).digest('hex')] });
    await seed.start();
    expect(seed.get(digest)).toBeUndefined();
    const t = await seed.openTask(task('p', digest));
    const layout = layoutFor(digest, blob.length);
    expect(t.meta.pieceSize).toBe(layout.pieceSize);
    expect(t.meta.pieceCount).toBe(4);
    const want = [0, 1, 2, 3].map((i) => createHash('sha256').update(blob.subarray(i * layout.pieceSize, (i + 1) * layout.pieceSize)).digest('hex'));
    expect(t.meta.hashes).toEqual(want);
    expect((await kv.get(digest))?.hashes).toEqual(want);
    expect(registry.heads).toHaveLength(1);
    expect(registry.gets).toEqual([]);
  });
});

describe('Seed: the layout of a blob it begins', () => {
  it('small pieces once the cluster has smallPiecesFromPeers live peers; a blob keeps its layout, across a restart too', async () => {
    let live = 3;
    const store = new MemoryContentStore();
    const kv = new MemoryKv<MetainfoBody>();
    const { seed, registry } = setup({ store, kv, livePeers: () => live, smallPiecesFromPeers: 4 });
    const first = randomBytes(4 * DEFAULT_PIECE_BYTES);
    const second = randomBytes(4 * DEFAULT_PIECE_BYTES);
    const a = registry.add({ bytes: first, name: 'private/app' });
    const b = registry.add({ bytes: second, name: 'private/app' });
    const ta = await seed.openTask(task('p', a));
    expect([ta.meta.pieceSize, ta.meta.pieceCount]).toEqual([DEFAULT_PIECE_BYTES, 4]);
    live = 4;
    const tb = await seed.openTask(task('p', b));
    const smallCount = (4 * DEFAULT_PIECE_BYTES) / SMALL_PIECE_BYTES;
    expect([tb.meta.pieceSize, tb.meta.pieceCount]).toEqual([SMALL_PIECE_BYTES, smallCount]);
    expect(await settled(ta)).toBe('complete');
    expect(await settled(tb)).toBe('complete');
    expect((await seed.openTask(task('q', a))).meta.pieceSize).toBe(DEFAULT_PIECE_BYTES);
    expect(Buffer.compare(await readAll(seed, 'p', tb), second)).toBe(0);
    expect(tb.meta.hashes).toEqual(Array.from({ length: smallCount }, (_, i) => i).map((i) => createHash('sha256').update(second.subarray(i * SMALL_PIECE_BYTES, (i + 1) * SMALL_PIECE_BYTES)).digest('hex')));
    await seed.close();

    live = 0;
    const again = setup({ store, kv, livePeers: () => live, smallPiecesFromPeers: 4 });
    await again.seed.start();
    expect(again.seed.get(b)?.meta.pieceSize).toBe(SMALL_PIECE_BYTES);
    expect(again.seed.get(a)?.meta.pieceSize).toBe(DEFAULT_PIECE_BYTES);
  });

  it("a blob begun again for a peer downloading it (TaskRequest.pieceSize) keeps that peer's layout, whatever the cluster's size; a size that is no layout is ignored", async () => {
    const { seed, registry } = setup({ livePeers: () => 0, smallPiecesFromPeers: 4 });
    const one = registry.add({ bytes: randomBytes(4 * DEFAULT_PIECE_BYTES), name: 'private/app' });
    const two = registry.add({ bytes: randomBytes(4 * DEFAULT_PIECE_BYTES), name: 'private/app' });
    expect((await seed.openTask({ ...task('p', one), pieceSize: SMALL_PIECE_BYTES })).meta.pieceSize).toBe(SMALL_PIECE_BYTES);
    expect((await seed.openTask({ ...task('p', two), pieceSize: 4096 })).meta.pieceSize).toBe(DEFAULT_PIECE_BYTES);
    // A task the seed has is not begun again: its layout stands.
    expect((await seed.openTask({ ...task('q', one), pieceSize: DEFAULT_PIECE_BYTES })).meta.pieceSize).toBe(SMALL_PIECE_BYTES);
  });
});

describe('Seed: eviction from its store', () => {
  it('a blob evicted from the store loses its metainfo, and the next task fetches it from the registry again', async () => {
    const { seed, registry, store, kv } = setup();
    const bytes = randomBytes(2 * DEFAULT_PIECE_BYTES + 3);
    const digest = registry.add({ bytes, name: 'private/app' });
    const t = await seed.openTask(task('p', digest));
    expect(await settled(t)).toBe('complete');
    expect(await kv.get(digest)).toBeDefined();
    // What the managed store's onRemoved does in the daemon.
    await store.delete(digest);
    seed.forgetBlob(digest);
    expect(seed.get(digest)).toBeUndefined();
    for (let i = 0; i < 10 && (await kv.get(digest)) !== undefined; i++) await new Promise((r) => setImmediate(r));
    expect(await kv.get(digest)).toBeUndefined();
    const again = await seed.openTask(task('p', digest));
    expect(await settled(again)).toBe('complete');
    expect(registry.gets).toHaveLength(2);
    expect(createHash('sha256').update(await readAll(seed, 'p', again)).digest('hex')).toBe(digest.slice(7));
  });
});
