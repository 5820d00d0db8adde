import { getEventListeners } from 'node:events';
// Preheat jobs with in-memory parts: the state machines, image resolution over a map of manifests,
// argument validation, peer selection, and the job manager driven by a ManualClock with fake ports
// (resolution, seed, live peers) and a MemoryKv, including a "restart" over the same store.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { MemoryKv, type Kv } from '../../../../src/db.ts';
import { sha256Digest, type Digest } from '../../../../src/digest.ts';
import { PollenError } from '../../../../src/errors.ts';
import { MediaType } from '../../../../src/oci/media-types.ts';
import type { FetchedManifest } from '../../../../src/oci/registry-client.ts';
import { JobManager } from '../../../../supernode/preheat/job-manager.ts';
import { JobStore } from '../../../../supernode/preheat/job-store.ts';
import type { JobRecord } from '../../../../supernode/preheat/preheat-job.ts';
import { DEFAULT_JOB_MANAGER_OPTIONS } from '../../../../supernode/preheat/job-options.ts';
import { preheatPorts, type JobUpstream, type PreheatPorts } from '../../../../supernode/preheat/preheat-ports.ts';
import { selectPeers } from '../../../../supernode/p2p/peer-selection.ts';
import { moveJob, moveTask } from '../../../../supernode/preheat/job-state.ts';
import { parsePreheatArgs } from '../../../../supernode/preheat/preheat-args.ts';
import { parsePlatform, resolveImage, type ManifestSource, type Resolved } from '../../../../supernode/preheat/preheat-resolver.ts';

const logger = pino({ level: 'silent' });
const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

describe('preheat state machines', () => {
  it('a job goes pending → running → succeeded|failed and never leaves a final state', () => {
    const running = moveJob({ name: 'pending' }, { name: 'running', since: 1, deadline: 2 });
    expect(moveJob(running, { name: 'succeeded', at: 3 }).name).toBe('succeeded');
    expect(moveJob({ name: 'pending' }, { name: 'failed', at: 1, code: 'ERR_ABORTED', reason: 'x' }).name).toBe('failed');
    expect(() => moveJob({ name: 'pending' }, { name: 'succeeded', at: 1 })).toThrow(/cannot move from pending to succeeded/);
    expect(() => moveJob({ name: 'succeeded', at: 1 }, { name: 'running', since: 1, deadline: 2 })).toThrow(PollenError);
    expect(() => moveJob({ name: 'failed', at: 1, code: 'x', reason: 'y' }, { name: 'failed', at: 2, code: 'x', reason: 'y' })).toThrow(/ERR|cannot/);
  });

  it('a task retries (active → waiting) but a done or failed task is final', () => {
    const active = moveTask({ name: 'waiting', attempts: 0 }, { name: 'active', attempts: 1, since: 0 });
    expect(moveTask(active, { name: 'waiting', attempts: 1 }).name).toBe('waiting');
    expect(() => moveTask({ name: 'done', attempts: 1 }, { name: 'failed', attempts: 1, reason: 'late' })).toThrow(/done to failed/);
    expect(() => moveTask({ name: 'failed', attempts: 3, reason: 'x' }, { name: 'active', attempts: 4, since: 0 })).toThrow(/failed to active/);
  });
});

function manifest(obj: unknown, mediaType: string): FetchedManifest {
  const bytes = Buffer.from(JSON.stringify(obj));
  return { mediaType, digest: sha256Digest(bytes), bytes };
}

function imageManifest(tag: string): { m: FetchedManifest; config: Digest; layers: Digest[] } {
  const config = sha256Digest(`${tag}-config`);
  const layers = [sha256Digest(`${tag}-l1`), sha256Digest(`${tag}-l2`), sha256Digest(`${tag}-l1`)];
  const m = manifest({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: config, size: 10 }, layers: layers.map((digest) => ({ mediaType: MediaType.OciLayerGzip, digest, size: 100 })) }, MediaType.OciManifest);
  return { m, config, layers };
}

function source(entries: Record<string, FetchedManifest>): ManifestSource & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async getManifest(name, reference) {
      asked.push(`${name}:${reference}`);
      const m = entries[`${name}:${reference}`];
      if (!m) throw new PollenError('ERR_MANIFEST_UNKNOWN', `manifest ${name}:${reference} not found`);
      return m;
    },
  };
}

describe('preheat resolution', () => {
  const amd = imageManifest('amd64');
  const arm = imageManifest('arm64');
  const index = manifest(
    {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        { mediaType: MediaType.OciManifest, digest: amd.m.digest, size: amd.m.bytes.length, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: MediaType.OciManifest, digest: arm.m.digest, size: arm.m.bytes.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    },
    MediaType.OciIndex,
  );
  const src = source({ 'ns/app:v1': amd.m, 'ns/multi:v1': index, [`ns/multi:${amd.m.digest}`]: amd.m, [`ns/multi:${arm.m.digest}`]: arm.m });

  it('a tag naming a manifest gives its config then its layers, without duplicates', async () => {
    const r = await resolveImage(src, 'ns/app', 'v1', parsePlatform('linux/amd64'));
    expect(r.manifest).toBe(amd.m.digest);
    expect(r.blobs.map((b) => b.digest)).toEqual([amd.config, amd.layers[0], amd.layers[1]]);
  });

  it('a tag naming an index gives the blobs of the requested platform', async () => {
    const r = await resolveImage(src, 'ns/multi', 'v1', parsePlatform('linux/arm64'));
    expect(r.manifest).toBe(arm.m.digest);
    expect(r.blobs[0]!.digest).toBe(arm.config);
  });

  it('a platform the index lacks fails with the platforms it has', async () => {
    await expect(resolveImage(src, 'ns/multi', 'v1', parsePlatform('linux/s390x'))).rejects.toMatchObject({ code: 'ERR_PLATFORM_UNKNOWN', message: expect.stringMatching(/linux\/amd64, linux\/arm64\/v8/) });
  });

  it('an unknown tag fails with the registry\'s error', async () => {
    await expect(resolveImage(src, 'ns/app', 'v9', parsePlatform('linux/amd64'))).rejects.toMatchObject({ code: 'ERR_MANIFEST_UNKNOWN' });
  });
});

describe('preheat args', () => {
  it('accepts a Dragonfly manifest URL or an image reference, and keeps credentials out of the echo', () => {
    const a = parsePreheatArgs({ type: 'image', url: 'https://reg.example/v2/library/redis/manifests/7', headers: { Authorization: 'Bearer t' }, timeout: 30e9 });
    expect(a.spec.target).toEqual({ registry: 'reg.example', baseUrl: 'https://reg.example', name: 'library/redis', reference: '7' });
    expect(a.spec.timeoutMs).toBe(30_000);
    expect(a.secrets.headers.authorization).toBe('Bearer t');
    expect(JSON.stringify(a.echo)).not.toContain('Bearer t');
    const b = parsePreheatArgs({ image: '127.0.0.1:5000/ns/app:v1', scope: 'all_peers', username: 'u', password: 'secret', count: 2 });
    expect(b.spec.target).toEqual({ registry: '127.0.0.1:5000', baseUrl: 'http://127.0.0.1:5000', name: 'ns/app', reference: 'v1' });
    expect(b.spec.selection.count).toBe(2);
    expect(JSON.stringify(b.echo)).not.toContain('secret');
  });

  it('refuses what it cannot do, naming the field', () => {
    expect(() => parsePreheatArgs({})).toThrow(/args.url .* or args.image/);
    expect(() => parsePreheatArgs({ image: 'a/b', scope: 'all_seed_peers' })).toThrow(/args.scope/);
    expect(() => parsePreheatArgs({ image: 'a/b', type: 'file' })).toThrow(/images only/);
    expect(() => parsePreheatArgs({ url: 'https://x/v2/a/blobs/sha256:00' })).toThrow(/manifest URL/);
    expect(() => parsePreheatArgs({ image: 'a/b', percentage: 101 })).toThrow(/args.percentage/);
    expect(() => parsePreheatArgs({ image: 'a/b', platform: 'linux' })).toThrow(/os\/arch/);
  });

  it('selects peers by id, IP, count or percentage', () => {
    const live = [{ id: 'c', addr: '10.0.0.3:1' }, { id: 'a', addr: '10.0.0.1:1' }, { id: 'b', addr: '10.0.0.2:1' }];
    expect(selectPeers(live, {}).map((p) => p.id)).toEqual(['a', 'b', 'c']);
    expect(selectPeers(live, { count: 2 }).map((p) => p.id)).toEqual(['a', 'b']);
    expect(selectPeers(live, { percentage: 34 }).map((p) => p.id)).toEqual(['a', 'b']);
    expect(selectPeers(live, { ips: ['10.0.0.3'] }).map((p) => p.id)).toEqual(['c']);
    expect(selectPeers(live, { ids: ['b', 'ghost'] })).toEqual([{ id: 'b', addr: '10.0.0.2:1' }, { id: 'ghost', addr: '' }]);
  });
});

class FakePorts implements PreheatPorts {
  peers: Array<{ id: string; addr: string }> = [];
  seedFetches: Digest[] = [];
  /** What the seed was asked to fetch with (the job's credential included). */
  seedUpstreams: JobUpstream[] = [];
  seedFailure: PollenError | undefined;
  registries = new Set(['127.0.0.1:5000', 'reg.example']);
  admitted: string[] = [];
  checkRegistry(registry: string): void {
    if (!this.registries.has(registry)) throw new PollenError('ERR_UNKNOWN_UPSTREAM', `the supernode is not configured to reach registry ${registry}`);
  }
  admit(peerId: string, digest: Digest): void {
    this.admitted.push(`${peerId} ${digest}`);
  }
  resolved: Resolved = { manifest: sha256Digest('m'), blobs: [{ digest: sha256Digest('a'), mediaType: 'x', size: 1 }, { digest: sha256Digest('b'), mediaType: 'x', size: 2 }] };
  async resolve(): Promise<Resolved> {
    return this.resolved;
  }
  async seedFetch(digest: Digest, _size: number, up: JobUpstream, _signal: AbortSignal, started: () => void): Promise<void> {
    this.seedFetches.push(digest);
    this.seedUpstreams.push(up);
    if (this.seedFailure) throw this.seedFailure;
    started();
  }
  livePeers() {
    return this.peers;
  }
}

function setup(kv = new MemoryKv(), clock = new ManualClock(1_000), ports = new FakePorts()) {
  const jobs = new JobManager({ kv, clock, logger, ports }, { registrationGraceMs: 0, peerAbsentMs: 5_000, taskTimeoutMs: 60_000, maxAttempts: 2 });
  const step = async (ms = 200): Promise<void> => {
    clock.advance(ms);
    jobs.tick();
    await flush();
  };
  return { jobs, clock, ports, kv, step };
}

describe('JobManager', () => {
  it('single_seed_peer: pending → running → succeeded once the seed holds every blob', async () => {
    const { jobs, ports, step } = setup();
    await jobs.start();
    const job = await jobs.create({ type: 'preheat', args: { image: '127.0.0.1:5000/ns/app:v1' } });
    expect(job.phase).toBe('pending');
    await step();
    await step();
    expect(ports.seedFetches).toEqual(ports.resolved.blobs.map((b) => b.digest));
    await step();
    expect(jobs.get(job.id)).toMatchObject({ phase: 'succeeded', state: 'SUCCESS', progress: { layers: { total: 2, done: 2, failed: 0 } } });
    await jobs.close();
  });

  it('tells peers to poll every pollMs while a job is queued or running and every idlePollMs otherwise', async () => {
    const { jobs, step } = setup();
    await jobs.start();
    expect(jobs.work('p1', []).pollMs).toBe(DEFAULT_JOB_MANAGER_OPTIONS.idlePollMs);
    const job = await jobs.create({ type: 'preheat', args: { image: '127.0.0.1:5000/ns/app:v1' } });
    expect(jobs.work('p1', []).pollMs).toBe(DEFAULT_JOB_MANAGER_OPTIONS.pollMs);
    for (let k = 0; k < 5 && jobs.get(job.id)?.phase !== 'succeeded'; k++) await step();
    expect(jobs.get(job.id)?.phase).toBe('succeeded');
    expect(jobs.work('p1', []).pollMs).toBe(DEFAULT_JOB_MANAGER_OPTIONS.idlePollMs);
    expect(DEFAULT_JOB_MANAGER_OPTIONS.idlePollMs).toBeGreaterThan(DEFAULT_JOB_MANAGER_OPTIONS.pollMs);
    await jobs.close();
  });

  it('all_peers: each live peer gets every blob through its polls, at most concurrent_peer_count peers per blob at once', async () => {
    const { jobs, ports, step } = setup();
    ports.peers = [{ id: 'p1', addr: '127.0.0.1:1' }, { id: 'p2', addr: '127.0.0.1:2' }, { id: 'p3', addr: '127.0.0.1:3' }];
    await jobs.start();
    const job = await jobs.create({ type: 'preheat', args: { image: 'reg.example/ns/app:v1', scope: 'all_peers', concurrent_peer_count: 2, concurrent_task_count: 1, headers: { Authorization: 'Bearer x' } } });
    await step();
    await step();
    const handedOut = ports.peers.map((p) => jobs.work(p.id, []).work);
    // One blob at a time (concurrent_task_count 1), to two peers at a time.
    expect(handedOut.flat().map((w) => w.digest)).toEqual([ports.resolved.blobs[0]!.digest, ports.resolved.blobs[0]!.digest]);
    // The peer learns which blob of which registry, never the job's credential; the seed has it.
    expect(handedOut[0]![0]!.upstream).toEqual({ registry: 'reg.example', name: 'ns/app' });
    expect(JSON.stringify(handedOut)).not.toContain('Bearer x');
    expect(ports.seedUpstreams[0]).toEqual({ registry: 'reg.example', name: 'ns/app', authorization: 'Bearer x' });
    expect(ports.admitted).toEqual([`p1 ${ports.resolved.blobs[0]!.digest}`, `p2 ${ports.resolved.blobs[0]!.digest}`]);
    for (let round = 0; round < 6; round++) {
      for (const p of ports.peers) jobs.work(p.id, jobs.work(p.id, []).work.map((w) => ({ job: w.job, digest: w.digest, ok: true })));
      await step();
    }
    const done = jobs.get(job.id)!;
    expect(done.phase).toBe('succeeded');
    expect(done.progress).toEqual({ layers: { total: 2, done: 2, failed: 0 }, peers: { total: 3, done: 3, failed: 0 }, tasks: { total: 6, done: 6, failed: 0 } });
    await jobs.close();
  });

  it('a job for a registry the supernode is not configured to reach is refused at creation', async () => {
    const { jobs, ports } = setup();
    await jobs.start();
    await expect(jobs.create({ type: 'preheat', args: { image: 'elsewhere.example/ns/app:v1' } })).rejects.toMatchObject({ code: 'ERR_UNKNOWN_UPSTREAM' });
    await expect(jobs.create({ type: 'preheat', args: { url: 'http://10.0.0.1:5000/v2/ns/app/manifests/v1' } })).rejects.toMatchObject({ code: 'ERR_UNKNOWN_UPSTREAM' });
    await expect(jobs.create({ type: 'preheat', args: { url: 'http://u:p@reg.example/v2/ns/app/manifests/v1' } })).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    expect(jobs.list()).toEqual([]);
    expect(ports.seedFetches).toEqual([]);
    await jobs.close();
  });

  it('a peer is admitted for a blob on the job\'s authority only once the seed was admitted with the job\'s credential', async () => {
    const { jobs, ports, step } = setup();
    ports.peers = [{ id: 'p1', addr: '127.0.0.1:1' }];
    ports.resolved = { manifest: sha256Digest('m'), blobs: [{ digest: sha256Digest('a'), mediaType: 'x', size: 1 }] };
    // The registry is unreachable at first: the seed retries, and no peer is sent meanwhile.
    ports.seedFailure = new PollenError('ERR_UPSTREAM_UNAVAILABLE', 'registry unreachable');
    await jobs.start();
    await jobs.create({ type: 'preheat', args: { image: 'reg.example/ns/app:v1', scope: 'all_peers', username: 'u', password: 'p' } });
    await step();
    await step();
    expect(jobs.work('p1', []).work).toEqual([]);
    expect(ports.admitted).toEqual([]);
    ports.seedFailure = undefined;
    await step();
    await step();
    const [w] = jobs.work('p1', []).work;
    expect(w).toMatchObject({ digest: sha256Digest('a'), upstream: { registry: 'reg.example', name: 'ns/app' } });
    expect(Object.keys(w!.upstream)).toEqual(['registry', 'name']);
    expect(ports.admitted).toEqual([`p1 ${sha256Digest('a')}`]);
    expect(ports.seedUpstreams.at(-1)!.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    await jobs.close();
  });

  it('a peer failing a blob is retried up to maxAttempts, then the job fails naming it', async () => {
    const { jobs, ports, step } = setup();
    ports.peers = [{ id: 'p1', addr: '127.0.0.1:1' }];
    ports.resolved = { manifest: sha256Digest('m'), blobs: [{ digest: sha256Digest('a'), mediaType: 'x', size: 1 }] };
    await jobs.start();
    const job = await jobs.create({ type: 'preheat', args: { image: 'reg.example/ns/app:v1', scope: 'all_peers' } });
    await step();
    await step();
    for (let i = 0; i < 2; i++) {
      const [w] = jobs.work('p1', []).work;
      expect(w).toBeDefined();
      jobs.work('p1', [{ job: w!.job, digest: w!.digest, ok: false, error: 'disk full' }]);
      await step();
    }
    expect(jobs.get(job.id)).toMatchObject({ phase: 'failed', code: 'ERR_JOB_INCOMPLETE', reason: expect.stringMatching(/peer p1 .*disk full/) });
    await jobs.close();
  });

  it('a seed that is refused by the registry fails the job at once with that reason', async () => {
    const { jobs, ports, step } = setup();
    ports.seedFailure = new PollenError('ERR_UNAUTHORIZED', 'registry requires authentication for blob x');
    await jobs.start();
    const job = await jobs.create({ type: 'preheat', args: { image: 'reg.example/ns/app:v1' } });
    await step();
    await step();
    expect(jobs.get(job.id)).toMatchObject({ phase: 'failed', code: 'ERR_UNAUTHORIZED', reason: expect.stringMatching(/requires authentication/) });
    expect(ports.seedFetches).toHaveLength(2);
    await jobs.close();
  });

  it('a selected peer that leaves the cluster fails its blobs after peerAbsentMs; the job timeout ends a job that cannot finish', async () => {
    const { jobs, ports, step } = setup();
    ports.peers = [{ id: 'p1', addr: '127.0.0.1:1' }];
    await jobs.start();
    const gone = await jobs.create({ type: 'preheat', args: { image: 'reg.example/ns/app:v1', scope: 'all_peers' } });
    const slow = await jobs.create({ type: 'preheat', args: { image: 'reg.example/ns/app:v1', scope: 'all_peers', timeout_ms: 3_000 } });
    await step();
    await step();
    ports.peers = [];
    await step(1_000);
    expect(jobs.get(gone.id)!.phase).toBe('running');
    await step(2_500);
    expect(jobs.get(slow.id)).toMatchObject({ phase: 'failed', code: 'ERR_JOB_TIMEOUT' });
    await step(5_000);
    expect(jobs.get(gone.id)).toMatchObject({ phase: 'failed', code: 'ERR_JOB_INCOMPLETE', reason: expect.stringMatching(/not registered/) });
    await jobs.close();
  });

  it('cancelling a running job fails it; cancelling it again forgets it', async () => {
    const { jobs, ports, step } = setup();
    ports.peers = [{ id: 'p1', addr: '127.0.0.1:1' }];
    await jobs.start();
    const job = await jobs.create({ type: 'preheat', args: { image: 'reg.example/ns/app:v1', scope: 'all_peers' } });
    await step();
    expect(await jobs.cancel(job.id)).toMatchObject({ phase: 'failed', code: 'ERR_ABORTED' });
    expect(jobs.work('p1', []).work).toEqual([]);
    expect(await jobs.cancel(job.id)).toBe('deleted');
    expect(jobs.get(job.id)).toBeUndefined();
    await jobs.close();
  });

  it('after a restart over the same store: a job without credentials resumes keeping what was done, one with credentials fails with ERR_JOB_INTERRUPTED', async () => {
    const kv = new MemoryKv();
    const first = setup(kv);
    first.ports.peers = [{ id: 'p1', addr: '127.0.0.1:1' }];
    await first.jobs.start();
    const plain = await first.jobs.create({ type: 'preheat', args: { image: 'reg.example/ns/app:v1', scope: 'all_peers', concurrent_task_count: 1 } });
    const secret = await first.jobs.create({ type: 'preheat', args: { image: 'reg.example/ns/app:v1', scope: 'all_peers', username: 'u', password: 'p' } });
    await first.step();
    await first.step();
    const [w] = first.jobs.work('p1', []).work;
    first.jobs.work('p1', [{ job: w!.job, digest: w!.digest, ok: true }]);
    await first.step();
    expect(first.jobs.get(plain.id)!.progress.tasks.done).toBe(1);
    // The process dies: no close(), only what was persisted survives.
    await first.jobs.flush();

    const second = setup(kv, new ManualClock(50_000), first.ports);
    const fetchesBefore = first.ports.seedFetches.length;
    await second.jobs.start();
    expect(second.jobs.get(secret.id)).toMatchObject({ phase: 'failed', code: 'ERR_JOB_INTERRUPTED' });
    expect(second.jobs.get(plain.id)).toMatchObject({ phase: 'running', resumed: 1, progress: { tasks: { done: 1 } } });
    for (let round = 0; round < 4; round++) {
      await second.step();
      second.jobs.work('p1', second.jobs.work('p1', []).work.map((x) => ({ job: x.job, digest: x.digest, ok: true })));
    }
    await second.step();
    expect(second.jobs.get(plain.id)).toMatchObject({ phase: 'succeeded', resumed: 1 });
    // The blob the seed held before the restart, with peers still to get it, was admitted again first.
    expect(first.ports.seedFetches.slice(fetchesBefore)).toEqual([first.ports.resolved.blobs[1]!.digest]);
    const third = await second.jobs.create({ type: 'preheat', args: { image: 'reg.example/ns/app:v1' } });
    expect(third.id).toBeGreaterThan(secret.id);
    await second.jobs.close();
  });
});

describe('JobStore', () => {
  /** A store whose deletes fail (a full disk): its puts and reads work. */
  class NoDeletes<T> extends MemoryKv<T> {
    constructor(
      private readonly shared = new Map<string, string>(),
      private readonly at = '',
    ) {
      super(shared, at);
    }
    override async del(): Promise<void> {
      throw new Error('disk full');
    }
    override sub<U>(name: string): Kv<U> {
      return new NoDeletes<U>(this.shared, `${this.at}${name}!`);
    }
  }

  it('forgets the oldest finished jobs beyond the cap; a delete that fails goes to onError, not to an unhandled rejection', async () => {
    const errors: string[] = [];
    const store = new JobStore({ kv: new NoDeletes(), clock: new ManualClock(0), onError: (err) => errors.push((err as Error).message) });
    const job = (id: number, state: JobRecord['state']): JobRecord => ({ id, createdAt: 0, updatedAt: 0, spec: {} as JobRecord['spec'], echo: {}, hasSecrets: false, state, resumed: 0, layers: [], peers: [], tasks: {} });
    for (const id of [1, 2, 3]) store.add(job(id, { name: 'succeeded', at: id }));
    store.add(job(4, { name: 'pending' }));
    store.prune(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect([...store.values()].map((j) => j.id)).toEqual([3, 4]);
    expect(errors).toEqual(['disk full', 'disk full']);
  });
});

describe('preheatPorts', () => {
  it('the seed wait takes its abort listener off once each partial of the task settles', async () => {
    // The seed's task goes through two partials (a retried stream), then completes.
    const releases: Array<() => void> = [];
    const fetching = () => {
      const settled = new Promise<void>((resolve) => releases.push(resolve));
      return { name: 'fetching', partial: { settled: false, settledPromise: () => settled } };
    };
    const states: unknown[] = [fetching(), fetching(), { name: 'complete' }];
    let at = 0;
    const seed = { ensure: async () => ({ state: states[0] }), sourceOf: () => ({}), get: () => ({ state: states[at] }) };
    const ports = preheatPorts({ seed, tracker: {}, hosts: {} } as unknown as Parameters<typeof preheatPorts>[0]);
    const controller = new AbortController();
    const upstream: JobUpstream = { registry: 'reg.example', name: 'ns/app' };
    const done = ports.seedFetch(sha256Digest('blob'), 4, upstream, controller.signal, () => {});
    for (let i = 0; i < 2; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
      at++;
      releases[i]!();
    }
    await done;
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
