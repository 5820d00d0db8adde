// The seed's trust rules against real parts: a docker-registry with htpasswd auth, a `pollen
// supernode` process configured for it, peers speaking the supernode API (a typed client, as a
// fake or hostile member would) and real `pollen peer` processes for preheat. The seed reaches
// configured registries only; metainfo and pieces of a private blob go only to a requester the
// registry admits; a preheat job's credentials never reach a peer, whose work is admitted on the
// job's authority.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../../src/digest.ts';
import type { MetainfoBody } from '../../src/p2p/supernode-api.ts';
import type { WorkReport, WorkResponse } from '../../src/preheat/jobs-api.ts';
import { JobsClient } from '../../src/preheat/jobs-client.ts';
import { SupernodeClient } from '../../peer/p2p/supernode-client.ts';
import { CLUSTER_SECRET, committedSources, pushRandomImage, startP2pPeer, startSupernodeProcess, type ImageFixture } from '../helpers/p2p-cluster.ts';
import type { PollenProcess } from '../helpers/pollen.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { waitFor } from '../helpers/tools.ts';

const MiB = 1 << 20;
const TOKEN = 'seed-access-admin-token';
const CREDS = { username: 'alice', password: 'wonderland' };
const ALICE = `Basic ${Buffer.from(`${CREDS.username}:${CREDS.password}`).toString('base64')}`;
const MALLORY = `Basic ${Buffer.from('mallory:guess').toString('base64')}`;

let registry: TestRegistry;
let image: ImageFixture;
let supernode: PollenProcess;
/** One API client per fake peer: each holds the token its registration brought back. */
const clients = new Map<string, SupernodeClient>();
const procs: PollenProcess[] = [];
const timers: NodeJS.Timeout[] = [];

function as(peerId: string): SupernodeClient {
  const c = clients.get(peerId);
  if (!c) throw new Error(`${peerId} is not registered`);
  return c;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/**
 * Registers a peer through the API alone (a member of the cluster: it has the secret) and keeps it
 * alive. Its calls go on the sync channel where the supernode takes them (creations too), or over
 * HTTP alone (`http`): the rules hold on both.
 */
async function apiPeer(peerId: string, over: 'channel' | 'http' = 'channel'): Promise<void> {
  const client = new SupernodeClient({}, { urls: [supernode.url], secret: CLUSTER_SECRET, timeoutMs: 10_000, syncChannel: over === 'channel' });
  clients.set(peerId, client);
  await client.register(supernode.url, { peerId, wireAddr: '127.0.0.1:9', uploadSlots: 1, holdings: [] });
  const t = setInterval(() => void client.heartbeat(supernode.url, peerId).catch(() => {}), 1_000);
  t.unref();
  timers.push(t);
}

/** Every piece of a task through the seed, once the seed knows every hash; checked against the digest. */
async function seedBlob(peerId: string, meta: MetainfoBody): Promise<Buffer> {
  const sync = () => as(peerId).sync(supernode.url, meta.digest, { have: [], wantSeed: 0, badParents: [] });
  // The client asks for trimmed answers (trimHashes): the list is whole once every hash is known.
  await waitFor(async () => {
    const { hashes } = await sync();
    return hashes.length === meta.pieceCount && hashes.every((h) => typeof h === 'string');
  }, 'every piece hash', 60_000);
  const hashes = (await sync()).hashes;
  const out: Buffer[] = [];
  for (let i = 0; i < meta.pieceCount; i++) {
    const answer = await as(peerId).seedPiece(supernode.url, meta.digest, i, AbortSignal.timeout(30_000));
    for await (const c of answer.body) out.push(c as Buffer);
    // The seed had the piece: its hash came in the answer's head, the one the syncs give.
    expect(answer.pieceHash()).toBe(hashes[i]);
  }
  return Buffer.concat(out);
}

beforeAll(async () => {
  registry = await TestRegistry.start({ auth: CREDS });
  image = await pushRandomImage(registry, 'private/app', [3 * MiB, 512 * 1024]);
  supernode = await startSupernodeProcess(registry, ['--admin-token', TOKEN]);
  procs.push(supernode);
}, 180_000);

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  for (const c of clients.values()) await c.close().catch(() => {});
  for (const p of procs) await p.stop().catch(() => {});
  await registry?.stop();
}, 120_000);

describe('the seed against a registry with htpasswd auth', () => {
  it('refuses a task for a registry it is not configured for, or one named by URL, or a name outside the grammar, without a request to any registry', async () => {
    await apiPeer('stranger');
    const digest = image.layers[0]!.descriptor.digest as Digest;
    const before = registry.accessLog().length;
    const task = (upstream: { registry: string; name: string }) => as('stranger').createTask(supernode.url, { digest, upstream: { ...upstream, authorization: ALICE } });
    await expect(task({ registry: '127.0.0.1:1', name: 'private/app' })).rejects.toMatchObject({ code: 'ERR_UNKNOWN_UPSTREAM', detail: { status: 400 } });
    await expect(task({ registry: 'http://127.0.0.1:1', name: 'private/app' })).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    // The old shape, a URL chosen by the caller, is refused by the schema.
    await expect(as('stranger').createTask(supernode.url, { digest, upstream: { baseUrl: 'http://127.0.0.1:1', name: 'private/app' } } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    await expect(task({ registry: registry.host, name: '../../v2/_catalog' })).rejects.toMatchObject({ code: 'ERR_INVALID_NAME' });
    await expect(task({ registry: registry.host, name: 'private/app/blobs/x?y=' })).rejects.toMatchObject({ code: 'ERR_INVALID_NAME' });
    expect(registry.accessLog().length).toBe(before);
  });

  it('a requester without credentials (or with wrong ones) gets neither metainfo nor pieces of a private blob; one with credentials gets both; its creations over HTTP are refused alike', async () => {
    for (const id of ['anon', 'mallory', 'alice']) await apiPeer(id);
    for (const id of ['anon-http', 'mallory-http']) await apiPeer(id, 'http');
    const layer = image.layers[0]!;
    const digest = layer.descriptor.digest as Digest;
    // Each creation asks for the first schedule too: it comes only with the admission, never before it.
    const task = (peerId: string, authorization?: string) =>
      as(peerId).createTask(supernode.url, { digest, sizeHint: layer.blob.length, upstream: { registry: registry.host, name: 'private/app', ...(authorization ? { authorization } : {}) }, first: { wantSeed: 1 } });
    for (const [anon, mallory] of [['anon', 'mallory'], ['anon-http', 'mallory-http']]) {
      await expect(task(anon!)).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
      await expect(task(mallory!, MALLORY)).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    }
    expect(registry.blobGets(digest)).toEqual([]);

    const meta = await task('alice', ALICE);
    expect(meta).toMatchObject({ digest, size: layer.blob.length });
    expect(Array.isArray(meta.first?.parents)).toBe(true);
    // With alice now in the task, a refused creation still names no parent (no holder of a private blob leaks).
    await expect(task('mallory', MALLORY)).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    await expect(task('mallory-http', MALLORY)).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    expect(sha256(await seedBlob('alice', meta))).toBe(digest);
    for (const peerId of ['anon', 'mallory', 'anon-http', 'mallory-http']) {
      await expect(as(peerId).seedPiece(supernode.url, digest, 0, AbortSignal.timeout(10_000))).rejects.toMatchObject({ code: 'ERR_SEED_NOT_ADMITTED', detail: { status: 403 } });
      await expect(as(peerId).sync(supernode.url, digest, { have: [], wantSeed: 1, badParents: [] })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    }
    // The seed holds the blob now: still nothing without credentials.
    await expect(task('anon')).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    await expect(task('anon-http')).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    // Each way was taken: the creations on the sync channel, the others over HTTP.
    expect([as('anon').taskCreations, as('anon-http').taskCreations]).toEqual([{ channel: 2, http: 0 }, { channel: 0, http: 2 }]);
    expect(registry.blobGets(digest)).toHaveLength(1);
  }, 120_000);

  it('preheat with credentials to all peers: work items carry no credential, peers get every blob through P2P and the seed, admitted on the job\'s authority', async () => {
    // Real peers, configured for the registry but with no credentials for it.
    const peers = await Promise.all([startP2pPeer(registry, supernode.url), startP2pPeer(registry, supernode.url)]);
    procs.push(...peers);
    await apiPeer('spy');
    await waitFor(async () => peers.every((p) => p.output().includes('"msg":"registered with the supernode"')), 'peers registered', 60_000);
    const ids = peers.map((p) => /"peerId":"([0-9a-f]+)"[^\n]*"msg":"joined the P2P cluster"/.exec(p.output())![1]!);
    const jobs = new JobsClient({ baseUrl: supernode.adminUrl, token: TOKEN });
    const created = await jobs.create({ type: 'preheat', args: { image: `${registry.host}/${image.ref}`, scope: 'all_peers', peers: [...ids, 'spy'], ...CREDS } });

    // The spy polls its work as a peer does and keeps every answer.
    const raw: string[] = [];
    const poll = async (reports: WorkReport[] = []): Promise<WorkResponse> => {
      const res = await as('spy').preheatWork(supernode.url, 'spy', { reports });
      raw.push(JSON.stringify(res));
      return res;
    };
    let work: WorkResponse['work'] = [];
    await waitFor(async () => (work = (await poll()).work).length > 0, 'work for the spy', 60_000);
    for (const item of work) {
      expect(Object.keys(item.upstream).sort()).toEqual(['name', 'registry']);
      expect(item.upstream).toEqual({ registry: registry.host, name: 'private/app' });
    }
    // Admitted on the job's authority: the spy's task and pieces need no credential of its own.
    const reports: WorkReport[] = [];
    for (const item of work) {
      const meta = await as('spy').createTask(supernode.url, { digest: item.digest, sizeHint: item.size ?? undefined, upstream: item.upstream });
      expect(sha256(await seedBlob('spy', meta))).toBe(item.digest);
      reports.push({ job: item.job, digest: item.digest, ok: true });
    }
    // A member the job did not send gets nothing without credentials.
    await apiPeer('outsider');
    await expect(as('outsider').createTask(supernode.url, { digest: work[0]!.digest, upstream: work[0]!.upstream })).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    await expect(as('outsider').seedPiece(supernode.url, work[0]!.digest, 0, AbortSignal.timeout(10_000))).rejects.toMatchObject({ code: 'ERR_SEED_NOT_ADMITTED' });

    await poll(reports);
    let phase = '';
    await waitFor(async () => {
      const r = await poll();
      for (const item of r.work) await poll([{ job: item.job, digest: item.digest, ok: true }]);
      phase = (await jobs.get(created.id)).phase;
      return phase === 'succeeded' || phase === 'failed';
    }, 'job to end', 180_000);
    const job = await jobs.get(created.id);
    expect(job.reason ?? '').toBe('');
    expect(phase).toBe('succeeded');
    expect(job.progress.peers).toEqual({ total: 3, done: 3, failed: 0 });
    const all = raw.join('\n');
    for (const secret of [CREDS.password, ALICE, ALICE.slice(6), 'authorization', 'Authorization']) expect(all).not.toContain(secret);
    for (const p of peers) {
      for (const l of image.layers) expect(sha256(await readFile(join(p.dataDir, 'content', 'blobs', 'sha256', l.descriptor.digest.slice(7))))).toBe(l.descriptor.digest);
      expect(committedSources(p.output()).upstream).toBe(0);
    }
    // Log lines as a log collector parses them: one `component` key each (duplicate keys are
    // refused by some, e.g. Elasticsearch), and the daemon named.
    for (const [proc, daemon] of [...peers.map((p) => [p, 'peer'] as const), [supernode, 'supernode'] as const]) {
      const lines = proc.output().split('\n').filter((l) => l.startsWith('{'));
      expect(lines.length).toBeGreaterThan(0);
      for (const l of lines) expect(l.split('"component":').length, l).toBeLessThanOrEqual(2);
      expect(lines.filter((l) => l.includes(`"daemon":"${daemon}"`)).length).toBeGreaterThan(0);
    }
  }, 300_000);
});
