// The preheat jobs as the supernode keeps them: in memory for the scheduling rounds, and in level
// so that a restarted supernode finds them. A job is marked changed (`touch`) as it moves and the
// changed ones are written in one batch (`flush`, serialised so an older write never lands last).
// Ids are never reused: the next id is stored too. Finished jobs beyond `maxKept` are forgotten,
// oldest first.
import type { Clock } from '../../src/clock.ts';
import type { Kv } from '../../src/db.ts';
import { isFinished } from './job-state.ts';
import type { JobRecord } from './preheat-job.ts';

export class JobStore {
  private readonly kv: Kv<JobRecord>;
  private readonly meta: Kv<number>;
  private readonly clock: Clock;
  private readonly onError: (err: unknown) => void;
  private readonly jobs = new Map<number, JobRecord>();
  private readonly dirty = new Set<number>();
  private nextId = 1;
  private writing: Promise<void> = Promise.resolve();

  constructor(deps: { kv: Kv; clock: Clock; onError: (err: unknown) => void }) {
    this.kv = deps.kv.sub<JobRecord>('job');
    this.meta = deps.kv.sub<number>('meta');
    this.clock = deps.clock;
    this.onError = deps.onError;
  }

  /** Reads the stored jobs (each passed to `each` as it is loaded). */
  async load(each: (job: JobRecord) => void): Promise<void> {
    this.nextId = (await this.meta.get('next-id')) ?? 1;
    for await (const [, job] of this.kv.entries()) {
      this.jobs.set(job.id, job);
      this.nextId = Math.max(this.nextId, job.id + 1);
      each(job);
    }
  }

  /** A new job's id, stored before the job is (an id is never handed out twice). */
  async allocateId(): Promise<number> {
    const id = this.nextId++;
    await this.meta.put('next-id', this.nextId);
    return id;
  }

  add(job: JobRecord): void {
    this.jobs.set(job.id, job);
    this.touch(job);
  }

  get(id: number): JobRecord | undefined {
    return this.jobs.get(id);
  }

  values(): IterableIterator<JobRecord> {
    return this.jobs.values();
  }

  /** Jobs not finished (queued or running). */
  get unfinished(): number {
    let n = 0;
    for (const j of this.jobs.values()) if (!isFinished(j.state)) n++;
    return n;
  }

  async remove(id: number): Promise<void> {
    this.jobs.delete(id);
    this.dirty.delete(id);
    await this.kv.del(key(id));
  }

  /** The job changed: stamped and written at the next flush. */
  touch(job: JobRecord): void {
    job.updatedAt = this.clock.now();
    this.dirty.add(job.id);
  }

  /** Writes changed jobs to level (serialised). */
  flush(): Promise<void> {
    const ids = [...this.dirty];
    this.dirty.clear();
    this.writing = this.writing.then(async () => {
      const ops = ids.flatMap((id) => {
        const job = this.jobs.get(id);
        return job ? [{ type: 'put' as const, key: key(id), value: job }] : [];
      });
      if (ops.length > 0) await this.kv.batch(ops).catch(this.onError);
    });
    return this.writing;
  }

  /** Forgets the oldest finished jobs beyond `maxKept`. */
  prune(maxKept: number): void {
    const finished = [...this.jobs.values()].filter((j) => isFinished(j.state)).sort((a, b) => a.id - b.id);
    for (const job of finished.slice(0, Math.max(0, finished.length - maxKept))) {
      this.jobs.delete(job.id);
      // A delete that fails (a full disk) leaves a finished job that the next start loads and prunes
      // again; it must not end the supernode as an unhandled rejection.
      void this.kv.del(key(job.id)).catch(this.onError);
    }
  }
}

function key(id: number): string {
  return String(id).padStart(12, '0');
}
