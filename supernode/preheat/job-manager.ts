// Runs preheat jobs: resolves the image, has the seed fetch every blob and (all_peers) hands each
// blob to every selected live peer through their work polls, with caps on blobs in flight per job
// (concurrent_task_count) and peers per blob (concurrent_peer_count), retries, a per-task and a
// per-job timeout. Every change is persisted in level; on start, unfinished jobs resume from their
// record (what is done stays done) or, when they carried registry credentials (never stored), fail
// with ERR_JOB_INTERRUPTED: no job stays "running" across a restart. The records and their
// persistence are job-store.ts, the limits and timings job-options.ts; the scheduling round,
// resolution, seed and peer assignment here all move the same job record through its state
// machines (read together, one checks that no transition is missed).
import type { Logger } from 'pino';
import type { Clock } from '../../src/clock.ts';
import type { Kv } from '../../src/db.ts';
import type { Digest } from '../../src/digest.ts';
import { PollenError, toPollenError, type ErrorCode } from '../../src/errors.ts';
import type { JobBody, WorkItem, WorkReport, WorkResponse } from '../../src/preheat/jobs-api.ts';
import { isFinished, moveJob, moveTask, type TaskState } from './job-state.ts';
import { hasSecrets, parsePreheatArgs, type PreheatSecrets, type PreheatSpec } from './preheat-args.ts';
import { selectPeers } from '../p2p/peer-selection.ts';
import { JobStore } from './job-store.ts';
import type { JobUpstream, PreheatPorts } from './preheat-ports.ts';
import { allSettled, failureSummary, jobBody, peerTaskStates, type JobRecord, type LayerRecord } from './preheat-job.ts';
import type { Resolved } from './preheat-resolver.ts';
import { DEFAULT_JOB_MANAGER_OPTIONS, type JobManagerOptions } from './job-options.ts';

interface Runtime {
  readonly secrets: PreheatSecrets;
  readonly controller: AbortController;
  resolving: boolean;
  resolveAttempts: number;
  /** Blobs the registry admitted the job's credential for (the seed fetched or holds them): peers may be sent for these. */
  readonly seedStarted: Set<Digest>;
  /** Blobs done before a restart whose admission is being asked again. */
  readonly readmitting: Set<Digest>;
  readonly absentSince: Map<string, number>;
}

const NO_SECRETS: PreheatSecrets = { headers: {} };
const RETRIABLE = new Set(['unavailable', 'aborted', 'internal']);

export class JobManager {
  private readonly jobs: JobStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly ports: PreheatPorts;
  private readonly options: JobManagerOptions;
  private readonly runtime = new Map<number, Runtime>();
  private startedAt = 0;
  private timer: { cancel(): void } | undefined;
  private closed = false;

  constructor(deps: { kv: Kv; clock: Clock; logger: Logger; ports: PreheatPorts }, options: Partial<JobManagerOptions> = {}) {
    this.clock = deps.clock;
    this.logger = deps.logger.child({ component: 'preheat' });
    this.jobs = new JobStore({ kv: deps.kv, clock: deps.clock, onError: (err) => this.logger.error({ err }, 'cannot persist preheat jobs') });
    this.ports = deps.ports;
    this.options = { ...DEFAULT_JOB_MANAGER_OPTIONS, ...options };
  }

  async start(): Promise<void> {
    this.startedAt = this.clock.now();
    await this.jobs.load((job) => {
      if (isFinished(job.state)) return;
      if (job.hasSecrets) {
        this.finish(job, 'ERR_JOB_INTERRUPTED', 'the supernode restarted while the job ran; its registry credentials are never stored, so it cannot resume: create it again');
        return;
      }
      job.resumed++;
      for (const l of job.layers) if (l.seed.name === 'active') l.seed = moveTask(l.seed, { name: 'waiting', attempts: l.seed.attempts - 1 });
      for (const t of peerTaskStates(job)) if (t.state.name === 'active') job.tasks[t.digest]![t.peerId] = moveTask(t.state, { name: 'waiting', attempts: t.state.attempts - 1 });
      this.touch(job);
      this.logger.info({ job: job.id, state: job.state.name }, 'preheat job resumed after a restart');
    });
    await this.flush();
    this.schedule();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    for (const rt of this.runtime.values()) rt.controller.abort(new PollenError('ERR_CLOSED', 'supernode closing'));
    await this.flush();
  }

  /** Validates and stores a new job (pending); it starts on the next tick. */
  async create(body: unknown): Promise<JobBody> {
    const b = (body ?? {}) as { type?: unknown; args?: unknown };
    if (b.type !== 'preheat') throw new PollenError('ERR_INVALID_REQUEST', `type must be "preheat" (got ${JSON.stringify(String(b.type ?? '')).slice(0, 40)})`);
    const { spec, secrets, echo } = parsePreheatArgs(b.args);
    this.ports.checkRegistry(spec.target.registry);
    const active = this.jobs.unfinished;
    if (active >= this.options.maxRunningJobs * 4) throw new PollenError('ERR_JOB_LIMIT', `${active} preheat jobs are already queued or running`);
    const now = this.clock.now();
    const job: JobRecord = { id: await this.jobs.allocateId(), createdAt: now, updatedAt: now, spec, echo, hasSecrets: hasSecrets(secrets), state: { name: 'pending' }, resumed: 0, layers: [], peers: [], tasks: {} };
    this.jobs.add(job);
    this.runtime.set(job.id, this.newRuntime(secrets));
    // The answer shows the job as created (pending), even if a tick starts it while it is stored.
    const created = jobBody(job);
    await this.flush();
    this.jobs.prune(this.options.maxKeptJobs);
    this.logger.info({ job: job.id, target: spec.target, scope: spec.scope }, 'preheat job created');
    return created;
  }

  get(id: number): JobBody | undefined {
    const job = this.jobs.get(id);
    return job && jobBody(job);
  }

  list(): JobBody[] {
    return [...this.jobs.values()].sort((a, b) => b.id - a.id).map(jobBody);
  }

  /** Cancels an unfinished job (→ failed), or forgets a finished one. */
  async cancel(id: number): Promise<JobBody | 'deleted' | undefined> {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    if (isFinished(job.state)) {
      this.runtime.delete(id);
      await this.jobs.remove(id);
      return 'deleted';
    }
    this.finish(job, 'ERR_ABORTED', 'cancelled by the operator');
    await this.flush();
    return jobBody(job);
  }

  /** A peer's poll: applies its reports and returns the blobs it must fetch now. */
  work(peerId: string, reports: readonly WorkReport[]): WorkResponse {
    for (const r of reports) {
      const job = this.jobs.get(r.job);
      const t = job?.tasks[r.digest]?.[peerId];
      if (!job || job.state.name !== 'running' || t?.name !== 'active') continue;
      if (r.ok) job.tasks[r.digest]![peerId] = moveTask(t, { name: 'done', attempts: t.attempts });
      else this.retryOrFail(job, r.digest, peerId, t, String(r.error ?? 'failed').slice(0, 500));
      this.touch(job);
    }
    const work: WorkItem[] = [];
    for (const job of this.jobs.values()) {
      if (job.state.name !== 'running') continue;
      // Identifiers only: the job's credential never goes to a peer.
      const upstream = { registry: registryOf(job), name: job.spec.target.name };
      const admitted = this.rt(job).seedStarted;
      for (const l of job.layers) {
        if (job.tasks[l.digest]?.[peerId]?.name !== 'active') continue;
        if (admitted.has(l.digest)) this.ports.admit(peerId, l.digest);
        work.push({ job: job.id, digest: l.digest, size: l.size, upstream });
      }
    }
    return { work, pollMs: this.jobs.unfinished > 0 ? this.options.pollMs : this.options.idlePollMs };
  }

  /** One scheduling round over every unfinished job (the timer calls it; tests call it directly). */
  tick(): void {
    const now = this.clock.now();
    let running = [...this.jobs.values()].filter((j) => j.state.name === 'running').length;
    for (const job of [...this.jobs.values()].sort((a, b) => a.id - b.id)) {
      if (job.state.name === 'pending' && running < this.options.maxRunningJobs) {
        job.state = moveJob(job.state, { name: 'running', since: now, deadline: now + job.spec.timeoutMs });
        running++;
        this.touch(job);
      }
      if (job.state.name === 'running') {
        try {
          this.step(job, now);
        } catch (err) {
          const e = toPollenError(err);
          this.finish(job, e.code, `internal error: ${e.message}`);
        }
      }
    }
    void this.flush();
  }

  /** Writes changed jobs to level (serialised). */
  flush(): Promise<void> {
    return this.jobs.flush();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.clock.setTimeout(() => {
      this.tick();
      this.schedule();
    }, this.options.tickMs);
  }

  private newRuntime(secrets: PreheatSecrets): Runtime {
    return { secrets, controller: new AbortController(), resolving: false, resolveAttempts: 0, seedStarted: new Set(), readmitting: new Set(), absentSince: new Map() };
  }

  private rt(job: JobRecord): Runtime {
    let rt = this.runtime.get(job.id);
    if (!rt) {
      rt = this.newRuntime(NO_SECRETS);
      this.runtime.set(job.id, rt);
    }
    return rt;
  }

  private step(job: JobRecord, now: number): void {
    const state = job.state;
    if (state.name !== 'running') return;
    const rt = this.rt(job);
    if (now >= state.deadline) {
      const b = jobBody(job);
      return this.finish(job, 'ERR_JOB_TIMEOUT', `timed out after ${Math.round(job.spec.timeoutMs / 1000)} s with ${b.progress.layers.done} of ${b.progress.layers.total} layers and ${b.progress.tasks.done} of ${b.progress.tasks.total} peer copies done`);
    }
    if (job.layers.length === 0) {
      if (!rt.resolving) this.resolve(job, rt);
      return;
    }
    if (job.spec.scope === 'all_peers' && job.selectedAt === undefined && !this.select(job, now)) return;
    const live = new Map(this.ports.livePeers().map((p) => [p.id, p]));
    const unsettledLayers = job.layers.filter((l) => l.seed.name !== 'done' || Object.values(job.tasks[l.digest] ?? {}).some((t) => t.name === 'waiting' || t.name === 'active'));
    for (const layer of unsettledLayers.slice(0, job.spec.concurrentTasks)) {
      if (layer.seed.name === 'waiting') this.startSeed(job, rt, layer, now);
      if (job.state.name !== 'running') return;
      if (!rt.seedStarted.has(layer.digest)) {
        // Done before a restart: peers are sent for it only once the registry admits the job again.
        if (layer.seed.name === 'done') this.readmit(job, rt, layer);
        continue;
      }
      const tasks = job.tasks[layer.digest] ?? {};
      let active = Object.values(tasks).filter((t) => t.name === 'active').length;
      for (const [peerId, t] of Object.entries(tasks)) {
        if (t.name === 'done' || t.name === 'failed') continue;
        if (!live.has(peerId)) {
          const since = rt.absentSince.get(peerId) ?? now;
          rt.absentSince.set(peerId, since);
          if (now - since >= this.options.peerAbsentMs) {
            tasks[peerId] = moveTask(t, { name: 'failed', attempts: t.attempts, reason: `peer ${peerId} is not registered with the supernode (gone for ${Math.round((now - since) / 1000)} s)` });
            this.touch(job);
          }
          continue;
        }
        rt.absentSince.delete(peerId);
        if (t.name === 'active' && now - t.since >= this.options.taskTimeoutMs) {
          this.retryOrFail(job, layer.digest, peerId, t, `no report from the peer within ${Math.round(this.options.taskTimeoutMs / 1000)} s`);
          active--;
        }
        const cur = tasks[peerId]!;
        if (cur.name === 'waiting' && active < job.spec.concurrentPeers) {
          tasks[peerId] = moveTask(cur, { name: 'active', attempts: cur.attempts + 1, since: now });
          active++;
          this.touch(job);
        }
      }
    }
    if (allSettled(job)) {
      const why = failureSummary(job);
      if (why) this.finish(job, 'ERR_JOB_INCOMPLETE', why);
      else this.succeed(job);
    }
  }

  /**
   * Fixes the job's peers. With none live yet (e.g. just after a supernode restart, before the
   * peers registered again) it waits up to peerAbsentMs, then fails with ERR_NO_PEERS. Right after
   * a start it waits registrationGraceMs, so that a restart does not shrink the selection.
   */
  private select(job: JobRecord, now: number): boolean {
    if (now - this.startedAt < this.options.registrationGraceMs) return false;
    const live = this.ports.livePeers();
    const peers = selectPeers(live, job.spec.selection);
    if (peers.length === 0) {
      const since = Math.max(job.state.name === 'running' ? job.state.since : now, this.startedAt);
      if (now - since >= this.options.peerAbsentMs) this.finish(job, 'ERR_NO_PEERS', `no live peer matches the selection (${live.length} registered with this supernode)`);
      return false;
    }
    job.peers = peers;
    job.selectedAt = now;
    for (const l of job.layers) job.tasks[l.digest] = Object.fromEntries(peers.map((p) => [p.id, { name: 'waiting', attempts: 0 } as TaskState]));
    this.touch(job);
    this.logger.info({ job: job.id, peers: peers.length }, 'preheat peers selected');
    return true;
  }

  private resolve(job: JobRecord, rt: Runtime): void {
    rt.resolving = true;
    rt.resolveAttempts++;
    const { target } = job.spec;
    this.ports.resolve(job.spec, rt.secrets, rt.controller.signal).then(
      (resolved) => {
        rt.resolving = false;
        if (job.state.name !== 'running') return;
        if (resolved.blobs.length > this.options.maxBlobsPerJob) {
          return this.finish(job, 'ERR_JOB_LIMIT', `${target.name}:${target.reference} has ${resolved.blobs.length} blobs, more than the ${this.options.maxBlobsPerJob} a job may hold`);
        }
        job.manifest = resolved.manifest;
        job.layers = resolved.blobs.map((b) => ({ digest: b.digest, mediaType: b.mediaType, size: b.size, seed: { name: 'waiting', attempts: 0 } }));
        this.touch(job);
        this.logger.info({ job: job.id, manifest: resolved.manifest, blobs: job.layers.length, peers: job.peers.length }, 'preheat job resolved');
      },
      (err: unknown) => {
        rt.resolving = false;
        if (job.state.name !== 'running') return;
        const e = toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE');
        if (RETRIABLE.has(e.kind) && rt.resolveAttempts < this.options.maxAttempts) return;
        this.finish(job, e.code, `cannot resolve ${target.baseUrl}/${target.name}:${target.reference}: ${e.message}`);
      },
    );
  }

  private startSeed(job: JobRecord, rt: Runtime, layer: LayerRecord, now: number): void {
    const from = layer.seed;
    if (from.name !== 'waiting') return;
    layer.seed = moveTask(from, { name: 'active', attempts: from.attempts + 1, since: now });
    this.touch(job);
    this.ports.seedFetch(layer.digest, layer.size, this.upstreamOf(job), rt.controller.signal, () => rt.seedStarted.add(layer.digest)).then(
      () => {
        rt.seedStarted.add(layer.digest);
        if (layer.seed.name !== 'active') return;
        layer.seed = moveTask(layer.seed, { name: 'done', attempts: layer.seed.attempts });
        this.touch(job);
      },
      (err: unknown) => {
        const cur = layer.seed;
        if (cur.name !== 'active' || job.state.name !== 'running') return;
        const e = toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE');
        rt.seedStarted.delete(layer.digest);
        if (RETRIABLE.has(e.kind) && cur.attempts < this.options.maxAttempts) {
          layer.seed = moveTask(cur, { name: 'waiting', attempts: cur.attempts, lastError: e.message });
          this.touch(job);
          return;
        }
        layer.seed = moveTask(cur, { name: 'failed', attempts: cur.attempts, reason: e.message });
        this.finish(job, e.code, `the seed could not fetch blob ${layer.digest}: ${e.message}`);
      },
    );
  }

  /** Asks the registry again (through the seed, which holds the blob) whether the job's credential reads it. */
  private readmit(job: JobRecord, rt: Runtime, layer: LayerRecord): void {
    if (rt.readmitting.has(layer.digest)) return;
    rt.readmitting.add(layer.digest);
    this.ports.seedFetch(layer.digest, layer.size, this.upstreamOf(job), rt.controller.signal, () => {}).then(
      () => {
        rt.readmitting.delete(layer.digest);
        rt.seedStarted.add(layer.digest);
      },
      (err: unknown) => {
        rt.readmitting.delete(layer.digest);
        if (job.state.name !== 'running') return;
        const e = toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE');
        // Retried on the next round while the registry is unreachable (the job timeout bounds it).
        if (!RETRIABLE.has(e.kind)) this.finish(job, e.code, `the registry no longer admits the job for blob ${layer.digest}: ${e.message}`);
      },
    );
  }

  private retryOrFail(job: JobRecord, digest: Digest, peerId: string, t: Extract<TaskState, { name: 'active' }>, reason: string): void {
    const tasks = job.tasks[digest]!;
    tasks[peerId] = t.attempts < this.options.maxAttempts ? moveTask(t, { name: 'waiting', attempts: t.attempts, lastError: reason }) : moveTask(t, { name: 'failed', attempts: t.attempts, reason });
    this.touch(job);
  }

  /** The seed's view of the job's target, with the job's credential (held in memory only). */
  private upstreamOf(job: JobRecord): JobUpstream {
    const { secrets } = this.rt(job);
    const c = secrets.credentials;
    const authorization = secrets.headers.authorization ?? (c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` : undefined);
    return { registry: registryOf(job), name: job.spec.target.name, ...(authorization ? { authorization } : {}) };
  }

  private succeed(job: JobRecord): void {
    job.state = moveJob(job.state, { name: 'succeeded', at: this.clock.now() });
    this.ended(job);
    this.logger.info({ job: job.id, blobs: job.layers.length, peers: job.peers.length }, 'preheat job succeeded');
  }

  private finish(job: JobRecord, code: ErrorCode | string, reason: string): void {
    job.state = moveJob(job.state, { name: 'failed', at: this.clock.now(), code, reason });
    this.ended(job);
    this.logger.warn({ job: job.id, code, reason }, 'preheat job failed');
  }

  private ended(job: JobRecord): void {
    this.touch(job);
    const rt = this.runtime.get(job.id);
    rt?.controller.abort(new PollenError('ERR_ABORTED', 'job finished'));
    // Secrets go as soon as the job ends.
    this.runtime.delete(job.id);
  }

  private touch(job: JobRecord): void {
    this.jobs.touch(job);
  }
}

/** The target's registry host key (records stored before it was kept carry the URL only). */
function registryOf(job: JobRecord): string {
  return job.spec.target.registry || new URL(job.spec.target.baseUrl).host;
}
