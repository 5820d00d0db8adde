// Preheat jobs end to end: a real registry, `pollen supernode --admin-token` and four
// `pollen peer --supernode` processes on 127.0.0.1, jobs created through the CLI and the typed
// client, peers' stores checked byte for byte, and pulls afterwards through a peer's mirror.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobBody, JobPhase } from '../../src/preheat/jobs-api.ts';
import { JobsClient } from '../../src/preheat/jobs-client.ts';
import { skopeoPullViaMirror } from '../helpers/clients.ts';
import { CLUSTER_SECRET, committedSources, pushRandomImage, startP2pPeer, startSupernodeProcess, type ImageFixture } from '../helpers/p2p-cluster.ts';
import { POLLEN_BIN, type PollenProcess } from '../helpers/pollen.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { execFileP, freePort, waitFor } from '../helpers/tools.ts';

const MiB = 1 << 20;
const TOKEN = 'preheat-admin-token';
let registry: TestRegistry;
/** A registry that needs credentials; the supernode is configured for it too. */
let locked: TestRegistry;
const LOCKED_CREDS = { username: 'alice', password: 'wonderland' };
let image: ImageFixture;
let supernode: PollenProcess;
let peers: PollenProcess[] = [];
const procs: PollenProcess[] = [];
const scratch: string[] = [];

function track(p: PollenProcess): PollenProcess {
  procs.push(p);
  return p;
}

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'pollen-preheat-'));
  scratch.push(d);
  return d;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Every blob of the image (config included) as the registry holds it. */
async function imageBlobs(ref: string): Promise<string[]> {
  const [name, tag] = ref.split(':') as [string, string];
  const res = await fetch(`${registry.url}/v2/${name}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const m = (await res.json()) as { config: { digest: string }; layers: Array<{ digest: string }> };
  return [m.config.digest, ...m.layers.map((l) => l.digest)];
}

async function storeHolds(p: PollenProcess, digest: string, root = 'content'): Promise<boolean> {
  try {
    return sha256(await readFile(join(p.dataDir, root, 'blobs', 'sha256', digest.slice(7)))) === digest;
  } catch {
    return false;
  }
}

async function waitEnd(client: JobsClient, id: number, onSeen?: (j: JobBody) => void, timeoutMs = 240_000): Promise<JobBody> {
  let job = await client.get(id);
  await waitFor(async () => {
    job = await client.get(id);
    onSeen?.(job);
    return job.phase === 'succeeded' || job.phase === 'failed';
  }, `job ${id} to end`, timeoutMs);
  return job;
}

function registeredCount(p: PollenProcess): number {
  return p.output().split('"msg":"registered with the supernode"').length - 1;
}

beforeAll(async () => {
  registry = await TestRegistry.start();
  locked = await TestRegistry.start({ auth: LOCKED_CREDS });
  image = await pushRandomImage(registry, 'pre/app', [9 * MiB, 2 * MiB, 256 * 1024]);
  supernode = track(await startSupernodeProcess(registry, ['--admin-token', TOKEN, '--registry', `${locked.host}=${locked.url}`]));
  peers = await Promise.all(Array.from({ length: 4 }, () => startP2pPeer(registry, supernode.url).then(track)));
  await waitFor(async () => peers.every((p) => registeredCount(p) > 0), 'peers registered', 60_000);
}, 300_000);

afterAll(async () => {
  const lines = procs.flatMap((p, i) => p.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l) || /preheat/.test(l)).map((l) => `[${i} ${p.url}] ${l}`));
  await writeFile(join(tmpdir(), 'pollen-preheat-test.log'), lines.join('\n'));
  for (const p of procs) await p.stop().catch(() => {});
  await registry?.stop();
  await locked?.stop();
  for (const d of scratch) await rm(d, { recursive: true, force: true });
}, 120_000);

describe('preheat jobs with real processes', () => {
  it('the jobs API (admin listener) answers 401 without the admin token, with a wrong one, and to the cluster secret', async () => {
    const body = JSON.stringify({ type: 'preheat', args: { image: `${registry.host}/${image.ref}` } });
    const post = (headers: Record<string, string>) => fetch(`${supernode.adminUrl}/api/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${CLUSTER_SECRET}` }];
    for (const headers of attempts) {
      const res = await post(headers);
      expect(res.status).toBe(401);
      const error = ((await res.json()) as { errors: Array<{ code: string; detail: { pollenCode: string } }> }).errors[0];
      expect(error).toMatchObject({ code: 'UNAUTHORIZED', detail: { pollenCode: 'ERR_ADMIN_UNAUTHORIZED' } });
    }
    expect((await fetch(`${supernode.adminUrl}/api/v1/jobs`)).status).toBe(401);
    expect((await fetch(`${supernode.adminUrl}/oapi/v1/jobs/1`)).status).toBe(401);
    await expect(new JobsClient({ baseUrl: supernode.adminUrl }).list()).rejects.toMatchObject({ code: 'ERR_ADMIN_UNAUTHORIZED' });
  });

  it('`pollen preheat --scope all-peers --wait` puts every blob in all 4 peers\' stores (digests verified), peers sharing with each other; phases go pending → running → succeeded', async () => {
    const client = new JobsClient({ baseUrl: supernode.adminUrl, token: TOKEN });
    const seen: JobPhase[] = [];
    const tasksDone: number[] = [];
    let watching = true;
    const sample = async (): Promise<void> => {
      const j = (await client.list().catch(() => []))[0];
      if (j) {
        if (seen.at(-1) !== j.phase) seen.push(j.phase);
        tasksDone.push(j.progress.tasks.done);
      }
    };
    const watcher = (async () => {
      while (watching) {
        await sample();
        await new Promise((r) => setTimeout(r, 50));
      }
      // The CLI returned once it saw the job end, maybe between two samples: one more.
      await sample();
    })();
    const blobs = await imageBlobs(image.ref);
    const { stdout } = await execFileP(process.execPath, [POLLEN_BIN, 'preheat', `${registry.host}/${image.ref}`, '--scope', 'all-peers', '--wait', '--supernode', supernode.adminUrl, '--token', TOKEN], { timeout: 300_000 });
    watching = false;
    await watcher;
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(new RegExp(`^job \\d+ succeeded: layers ${blobs.length}/${blobs.length}, peers 4/4, copies ${4 * blobs.length}/${4 * blobs.length}$`));
    expect(lines.some((l) => / running: /.test(l))).toBe(true);
    for (const p of peers) for (const d of blobs) expect(await storeHolds(p, d), `${p.url} holds ${d}`).toBe(true);
    // Phases only move forward, ending in succeeded; progress never goes back.
    expect(['pending', 'running', 'succeeded'].filter((s) => seen.includes(s as JobPhase))).toEqual(seen);
    expect(seen.at(-1)).toBe('succeeded');
    expect(tasksDone).toEqual([...tasksDone].sort((a, b) => a - b));
    const job = (await client.list())[0]!;
    expect(job.state).toBe('SUCCESS');
    expect(job.result.job_states[0]!.results[0]!.success_tasks).toHaveLength(4 * blobs.length);
    expect(job.layers.every((l) => l.seed === 'done' && l.peers_done === 4)).toBe(true);
    // Through P2P: the registry sent the image about once, and peers fed each other.
    expect(registry.blobBytesSent()).toBeLessThanOrEqual(1.1 * (image.size + 4096));
    const from = peers.map((p) => committedSources(p.output()));
    expect(from.reduce((n, s) => n + s.peer, 0)).toBeGreaterThan(0);
    expect(from.reduce((n, s) => n + s.upstream, 0)).toBe(0);
  }, 400_000);

  it('a pull through any peer after the preheat makes no upstream blob GET and no peer-to-peer transfer', async () => {
    for (const p of [peers[0]!, peers[3]!]) {
      const gets = registry.blobGets().length;
      const committed = p.output().split('"msg":"blob committed"').length;
      const dest = await tempDir();
      await skopeoPullViaMirror(p.host, image.ref, dest);
      for (const l of image.layers) expect(sha256(await readFile(join(dest, 'blobs', 'sha256', l.descriptor.digest.slice(7))))).toBe(l.descriptor.digest);
      expect(registry.blobGets().length - gets).toBe(0);
      expect(p.output().split('"msg":"blob committed"').length).toBe(committed);
      const metrics = await (await fetch(`${p.metricsUrl}/metrics`)).text();
      expect(metrics).toMatch(/pollen_peer_blob_requests_total\{outcome="hit"\} [1-9]/);
      expect(metrics).not.toMatch(/pollen_peer_blob_requests_total\{outcome="miss"\} [1-9]/);
    }
  }, 300_000);

  it('single_seed_peer: the supernode\'s seed holds every blob', async () => {
    const other = await pushRandomImage(registry, 'pre/seedonly', [1 * MiB]);
    const client = new JobsClient({ baseUrl: supernode.adminUrl, token: TOKEN });
    const created = await client.create({ type: 'preheat', args: { url: `${registry.url}/v2/pre/seedonly/manifests/v1`, scope: 'single_seed_peer' } });
    expect(created.phase).toBe('pending');
    expect(created.state).toBe('PENDING');
    const job = await waitEnd(client, created.id);
    expect(job.phase).toBe('succeeded');
    for (const d of await imageBlobs(other.ref)) expect(await storeHolds(supernode, d, 'seed')).toBe(true);
    for (const p of peers) expect(await storeHolds(p, other.layers[0]!.descriptor.digest)).toBe(false);
  }, 120_000);

  it('a request as Harbor\'s Dragonfly provider sends it (/healthy, POST /oapi/v1/jobs with a manifest URL and headers) gets an integer id and PENDING, then SUCCESS', async () => {
    const other = await pushRandomImage(registry, 'pre/harbor', [256 * 1024]);
    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    expect((await fetch(`${supernode.adminUrl}/healthy`, { headers: auth })).status).toBe(200);
    const res = await fetch(`${supernode.adminUrl}/oapi/v1/jobs`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ type: 'preheat', args: { type: 'image', url: `${registry.url}/v2/pre/harbor/manifests/v1`, headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' }, scope: 'single_seed_peer' } }),
    });
    expect(res.status).toBe(200);
    const created = (await res.json()) as { id: unknown; state: string; created_at: string };
    expect(Number.isInteger(created.id)).toBe(true);
    expect(created.state).toBe('PENDING');
    expect(Number.isNaN(Date.parse(created.created_at))).toBe(false);
    let state = created.state;
    await waitFor(async () => {
      state = ((await (await fetch(`${supernode.adminUrl}/oapi/v1/jobs/${String(created.id)}`, { headers: auth })).json()) as { state: string }).state;
      return state !== 'PENDING';
    }, 'job to end', 120_000);
    expect(state).toBe('SUCCESS');
    expect(await storeHolds(supernode, other.layers[0]!.descriptor.digest, 'seed')).toBe(true);
  }, 180_000);

  it('a reference the registry does not have fails the job with the registry\'s answer as the reason; the CLI exits 1', async () => {
    const client = new JobsClient({ baseUrl: supernode.adminUrl, token: TOKEN });
    const created = await client.create({ type: 'preheat', args: { image: `${registry.host}/pre/absent:v9`, scope: 'all_peers' } });
    const job = await waitEnd(client, created.id);
    expect(job.phase).toBe('failed');
    expect(job.state).toBe('FAILURE');
    expect(job.code).toBe('ERR_MANIFEST_UNKNOWN');
    expect(job.reason).toMatch(/pre\/absent:v9.*not found/);
    expect(job.result.job_states[0]!.error).toBe(job.reason);
    const cli = await execFileP(process.execPath, [POLLEN_BIN, 'preheat', `${registry.host}/pre/absent:v9`, '--wait', '--supernode', supernode.adminUrl, '--token', TOKEN]).catch((e: { code: number; stderr: string }) => e);
    expect((cli as { code: number }).code).toBe(1);
    expect((cli as { stderr: string }).stderr).toMatch(/failed: .*not found.*ERR_MANIFEST_UNKNOWN/);
  }, 120_000);

  it('a registry that needs credentials: without them the job fails with ERR_UNAUTHORIZED; with them it succeeds', async () => {
    const creds = LOCKED_CREDS;
    await pushRandomImage(locked, 'pre/private', [512 * 1024]);
    const client = new JobsClient({ baseUrl: supernode.adminUrl, token: TOKEN });
    const bare = await waitEnd(client, (await client.create({ type: 'preheat', args: { image: `${locked.host}/pre/private:v1` } })).id);
    expect(bare.phase).toBe('failed');
    expect(bare.code).toBe('ERR_UNAUTHORIZED');
    expect(bare.reason).toMatch(/requires authentication/);
    const withCreds = await waitEnd(client, (await client.create({ type: 'preheat', args: { image: `${locked.host}/pre/private:v1`, ...creds } })).id);
    expect(withCreds.phase).toBe('succeeded');
    expect(withCreds.args.password).toBe('');
    expect(JSON.stringify(withCreds)).not.toContain(creds.password);
  }, 180_000);

  it('a job for a registry the supernode is not configured to reach is refused when created', async () => {
    const client = new JobsClient({ baseUrl: supernode.adminUrl, token: TOKEN });
    await expect(client.create({ type: 'preheat', args: { image: '127.0.0.1:1/pre/app:v1' } })).rejects.toMatchObject({ code: 'ERR_UNKNOWN_UPSTREAM' });
  });

  it('DELETE cancels a running job (failed, "cancelled"); a second DELETE forgets it', async () => {
    const client = new JobsClient({ baseUrl: supernode.adminUrl, token: TOKEN });
    // A named peer that does not exist keeps the job running until it is judged absent.
    const created = await client.create({ type: 'preheat', args: { image: `${registry.host}/${image.ref}`, scope: 'all_peers', peers: ['ghost'] } });
    await waitFor(async () => (await client.get(created.id)).phase === 'running', 'job running');
    const cancelled = await client.cancel(created.id);
    expect(cancelled?.phase).toBe('failed');
    expect(cancelled?.code).toBe('ERR_ABORTED');
    expect(cancelled?.reason).toMatch(/cancelled/);
    expect(await client.cancel(created.id)).toBeUndefined();
    await expect(client.get(created.id)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  }, 60_000);
});

describe('preheat jobs across a supernode restart', () => {
  it('a job without credentials resumes and succeeds; a job with credentials fails with ERR_JOB_INTERRUPTED', async () => {
    const data = await tempDir();
    const port = await freePort();
    const img = await pushRandomImage(registry, 'pre/restart', [6 * MiB, 1 * MiB]);
    let sn = await startSupernodeProcess(registry, ['--admin-token', TOKEN], { dataDir: data, port });
    const two = await Promise.all([startP2pPeer(registry, sn.url).then(track), startP2pPeer(registry, sn.url).then(track)]);
    await waitFor(async () => two.every((p) => registeredCount(p) > 0), 'peers registered', 60_000);
    let client = new JobsClient({ baseUrl: sn.adminUrl, token: TOKEN });
    const plain = await client.create({ type: 'preheat', args: { image: `${registry.host}/${img.ref}`, scope: 'all_peers' } });
    const secret = await client.create({ type: 'preheat', args: { image: `${registry.host}/${img.ref}`, scope: 'all_peers', username: 'u', password: 'p' } });
    sn.kill('SIGKILL');
    await sn.stop({ keepData: true });
    sn = track(await startSupernodeProcess(registry, ['--admin-token', TOKEN], { dataDir: data, port }));
    client = new JobsClient({ baseUrl: sn.adminUrl, token: TOKEN });
    const interrupted = await client.get(secret.id);
    expect(interrupted.phase).toBe('failed');
    expect(interrupted.code).toBe('ERR_JOB_INTERRUPTED');
    expect(interrupted.reason).toMatch(/credentials are never stored/);
    const resumed = await waitEnd(client, plain.id);
    expect(resumed.resumed).toBe(1);
    expect(resumed.phase).toBe('succeeded');
    // Both peers, though they registered again one after the other after the restart.
    expect(resumed.progress.peers).toEqual({ total: 2, done: 2, failed: 0 });
    for (const p of two) for (const d of await imageBlobs(img.ref)) expect(await storeHolds(p, d)).toBe(true);
  }, 300_000);
});
