// The blob path's access decision is per (credential, registry, repository, digest), taken before
// anything is served and before a download is started or joined.
import { BODY_CHUNK_BYTES, isPooledBody } from '../../../../src/pooled-body.ts';
import type { Readable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { sha256Digest, type Digest } from '../../../../src/digest.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { PartialBlob } from '../../../../src/partial-blob.ts';
import { AccessCache } from '../../../../peer/mirror/access-control.ts';
import { AccessGate } from '../../../../peer/mirror/access-gate.ts';
import { BlobService, type BlobRequest } from '../../../../peer/mirror/blob-service.ts';
import type { MirrorReply } from '../../../../peer/mirror/mirror-reply.ts';
import type { BlobDownloader, BlobFetchRequest } from '../../../../peer/blob-downloader.ts';
import { FakeRegistry } from './fake-registry.ts';

const ALICE = 'Bearer alice-token';
const PUBLIC = 'Bearer public-token';
const TTL_MS = 1_000;
const GRACE_MS = 60_000;

const privateBlob = Buffer.from('private layer bytes '.repeat(100));
const publicBlob = Buffer.from('public layer bytes '.repeat(100));
const PRIVATE = sha256Digest(privateBlob);
const PUBLIC_DIGEST = sha256Digest(publicBlob);

class RecordingDownloader implements BlobDownloader {
  readonly started: BlobFetchRequest[] = [];
  partial: PartialBlob | undefined;
  constructor(private readonly store: MemoryContentStore) {}
  async start(request: BlobFetchRequest): Promise<PartialBlob> {
    this.started.push(request);
    this.partial = new PartialBlob({ store: this.store, ingest: await this.store.openIngest(request.digest) }, { size: privateBlob.length });
    return this.partial;
  }
}

async function bodyOf(r: MirrorReply): Promise<Buffer> {
  if (r.body === undefined) return Buffer.alloc(0);
  if (Buffer.isBuffer(r.body)) return r.body;
  const chunks: Buffer[] = [];
  // A pooled body (a blob in flight) fills the buffers it is given: copy each before the next.
  const source = isPooledBody(r.body) ? r.body.chunks(() => Buffer.allocUnsafe(BODY_CHUNK_BYTES)) : (r.body as Readable);
  for await (const c of source) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

async function put(store: MemoryContentStore, bytes: Buffer): Promise<void> {
  const ingest = await store.openIngest(sha256Digest(bytes));
  await ingest.writeAt(bytes, 0);
  await ingest.commit(bytes.length);
}

describe('BlobService access decisions', () => {
  let registry: FakeRegistry;
  let store: MemoryContentStore;
  let clock: ManualClock;
  let downloader: RecordingDownloader;
  let joins: number;
  let service: BlobService;

  const ask = (name: string, digest: Digest, authorization: string | undefined, extra: Partial<BlobRequest> = {}) =>
    service.serve({ method: 'GET', upstream: { host: 'r', baseUrl: registry.url, staticAuthorization: undefined }, name, digest, authorization, range: undefined, ...extra });

  beforeEach(async () => {
    registry = await new FakeRegistry().start();
    registry.blobs.set(PRIVATE, privateBlob).set(PUBLIC_DIGEST, publicBlob);
    registry.grant(ALICE, `/v2/private/app/blobs/${PRIVATE}`);
    registry.grant(PUBLIC, `/v2/public/app/blobs/${PUBLIC_DIGEST}`);
    store = new MemoryContentStore();
    clock = new ManualClock();
    downloader = new RecordingDownloader(store);
    joins = 0;
    const logger = pino({ level: 'silent' });
    const gate = new AccessGate({ cache: new AccessCache({ clock }, { ttlMs: TTL_MS, graceMs: GRACE_MS }), logger });
    service = new BlobService({ store, gate, downloader, logger, stats: { onHit() {}, onMiss() {}, onJoin: () => void joins++ } });
  });

  afterEach(async () => {
    await registry.stop();
  });

  it('serves a stored blob to a client allowed this digest, and refuses one allowed another digest of the same repository', async () => {
    await put(store, privateBlob);
    await put(store, publicBlob);
    const alice = await ask('private/app', PRIVATE, ALICE);
    expect(alice.status).toBe(200);
    expect((await bodyOf(alice)).equals(privateBlob)).toBe(true);

    // The public client reads public/app (a fresh allowance for it), then names the private digest there.
    expect((await ask('public/app', PUBLIC_DIGEST, PUBLIC)).status).toBe(200);
    for (const extra of [{}, { method: 'HEAD' as const }, { range: 'bytes=0-9' }]) {
      const r = await ask('public/app', PRIVATE, PUBLIC, extra);
      expect(r.status).toBe(404);
      const body = await bodyOf(r);
      expect(body.includes(privateBlob.subarray(0, 20))).toBe(false);
      if (extra.method !== 'HEAD') expect(JSON.parse(body.toString()).errors[0].code).toBe('BLOB_UNKNOWN');
    }
    // Anonymous: the upstream's challenge, unchanged.
    const anonymous = await ask('private/app', PRIVATE, undefined);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toContain('Bearer realm=');
  });

  it('caches a decision per digest: the same digest again asks nothing, another digest asks again', async () => {
    await put(store, privateBlob);
    await put(store, publicBlob);
    registry.grant(ALICE, `/v2/private/app/blobs/${PUBLIC_DIGEST}`);
    await ask('private/app', PRIVATE, ALICE);
    await ask('private/app', PRIVATE, ALICE);
    expect(registry.heads(`/v2/private/app/blobs/${PRIVATE}`)).toBe(1);
    await ask('private/app', PUBLIC_DIGEST, ALICE);
    expect(registry.heads(`/v2/private/app/blobs/${PUBLIC_DIGEST}`)).toBe(1);
    clock.advance(TTL_MS);
    await ask('private/app', PRIVATE, ALICE);
    expect(registry.heads(`/v2/private/app/blobs/${PRIVATE}`)).toBe(2);
  });

  it('on a cold blob, a refused client neither starts a download nor joins the one in flight', async () => {
    expect((await ask('public/app', PRIVATE, PUBLIC)).status).toBe(404);
    expect(downloader.started).toHaveLength(0);

    const alice = await ask('private/app', PRIVATE, ALICE);
    expect(alice.status).toBe(200);
    expect(downloader.started).toHaveLength(1);
    const refused = await ask('public/app', PRIVATE, PUBLIC);
    const refusedHead = await ask('public/app', PRIVATE, PUBLIC, { method: 'HEAD' });
    expect([refused.status, refusedHead.status]).toEqual([404, 404]);
    expect(joins).toBe(0);
    expect(downloader.started).toHaveLength(1);

    await downloader.partial!.append(privateBlob);
    await downloader.partial!.commit();
    expect((await bodyOf(alice)).equals(privateBlob)).toBe(true);
  });

  it('a prefetch starts a download only for a client the upstream allows, once, and the client then joins it', async () => {
    const prefetch = (name: string, authorization: string | undefined) =>
      service.prefetch({ upstream: { host: 'r', baseUrl: registry.url, staticAuthorization: undefined }, name, digest: PRIVATE, size: privateBlob.length, authorization });
    // Refused (no credential, or one allowed another repository): nothing starts, nothing throws.
    await prefetch('private/app', undefined);
    await prefetch('public/app', PUBLIC);
    expect(downloader.started).toHaveLength(0);
    // Allowed: one download, with the declared size and the client's own credential; again, nothing more.
    await prefetch('private/app', ALICE);
    await prefetch('private/app', ALICE);
    expect(downloader.started).toHaveLength(1);
    expect(downloader.started[0]).toMatchObject({ digest: PRIVATE, sizeHint: privateBlob.length, upstream: { name: 'private/app', authorization: ALICE } });
    // The client's own request joins it, after its own gate.
    const pending = ask('private/app', PRIVATE, ALICE);
    await downloader.partial!.append([privateBlob]);
    await downloader.partial!.commit();
    expect((await bodyOf(await pending)).equals(privateBlob)).toBe(true);
    expect(downloader.started).toHaveLength(1);
    expect((await ask('private/app', PRIVATE, undefined)).status).toBe(401);
  });

  it('while the upstream is down, serves a stored blob only on an earlier allowance of that very digest', async () => {
    await put(store, privateBlob);
    await put(store, publicBlob);
    registry.grant(ALICE, `/v2/private/app/blobs/${PUBLIC_DIGEST}`);
    expect((await ask('private/app', PRIVATE, ALICE)).status).toBe(200);
    await registry.stop();
    clock.advance(TTL_MS + 1);

    const allowedBefore = await ask('private/app', PRIVATE, ALICE);
    expect(allowedBefore.status).toBe(200);
    expect((await bodyOf(allowedBefore)).equals(privateBlob)).toBe(true);
    // Same client and repository, a digest it was never allowed: nothing.
    await expect(ask('private/app', PUBLIC_DIGEST, ALICE)).rejects.toMatchObject({ code: 'ERR_UPSTREAM_UNAVAILABLE' });
    // Another client, or another repository: nothing.
    await expect(ask('private/app', PRIVATE, PUBLIC)).rejects.toMatchObject({ code: 'ERR_UPSTREAM_UNAVAILABLE' });
    await expect(ask('public/app', PRIVATE, ALICE)).rejects.toMatchObject({ code: 'ERR_UPSTREAM_UNAVAILABLE' });
    // After the grace window, not even the client allowed before.
    clock.advance(GRACE_MS);
    await expect(ask('private/app', PRIVATE, ALICE)).rejects.toMatchObject({ code: 'ERR_UPSTREAM_UNAVAILABLE' });
  });

  it('a refusal forgets an earlier allowance at once', async () => {
    await put(store, privateBlob);
    expect((await ask('private/app', PRIVATE, ALICE)).status).toBe(200);
    registry.allow.clear();
    clock.advance(TTL_MS);
    expect((await ask('private/app', PRIVATE, ALICE)).status).toBe(404);
    await registry.stop();
    await expect(ask('private/app', PRIVATE, ALICE)).rejects.toMatchObject({ code: 'ERR_UPSTREAM_UNAVAILABLE' });
  });
});
