// The supernode side of the simulation: the REAL Tracker and Scheduler (imported from supernode/,
// not copied) under a ManualClock that follows the event queue. The few lines of glue mirror what
// supernode/p2p/routes-p2p.ts does for POST /peers, POST /tasks, POST /tasks/:digest/sync and the
// heartbeat, without HTTP. Every call into the scheduler is timed on the wall clock, so the run
// reports how many scheduling decisions per second the real code makes. One task per blob the peers
// pull (an image's layers: one each), each with the seed's progress on it.
import { ManualClock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import type { HeartbeatResponse, ParentInfo, SyncBatchItem, SyncRequest } from '../../src/p2p/supernode-api.ts';
import { Scheduler } from '../../supernode/p2p/scheduler.ts';
import { DEFAULT_SYNC_ANSWER_BYTES_PER_S, DEFAULT_SYNC_RATE, SyncPacer } from '../../supernode/p2p/sync-pacer.ts';
import { scheduleSync, syncItemTask, takeSyncReports } from '../../supernode/p2p/task-sync.ts';
import type { SchedulerOptions } from '../../supernode/p2p/scheduler-options.ts';
import { HEARTBEAT_MS, Tracker, type PeerRecord } from '../../supernode/p2p/tracker.ts';
import type { EventQueue } from './event-queue.ts';

export interface SimSyncAnswer {
  readonly parents: readonly ParentInfo[];
  readonly seedGrants: readonly number[];
  readonly availability: readonly number[];
  readonly syncMs?: number;
}

/** One blob's task: its digest, piece count, and whether the seed has piece i at a simulated time. */
export interface SimTask {
  readonly digest: Digest;
  readonly pieceCount: number;
  seedHasAt(i: number, nowMs: number): boolean;
}

export interface SupernodeStats {
  /** Calls of Scheduler.schedule() (one per sync) and the wall ms they took (with the sync's have()). */
  scheduleCalls: number;
  syncWallMs: number;
  /** Wall ms of every call into the scheduler and tracker (syncs, registrations, heartbeats). */
  schedulerWallMs: number;
  /** The most schedule() calls in one second of simulated time. */
  peakCallsPerSimS: number;
  /** Syncs, and those that ran a parent scan, in each second of simulated time. */
  readonly callsBySimS: number[];
  readonly scansBySimS: number[];
  /** Heartbeats in each second of simulated time (a request each, like a sync). */
  readonly heartbeatsBySimS: number[];
  /** Registrations and task creations without a first sync in each second of the pull: a request each, no schedule. */
  readonly setupRequestsBySimS: number[];
  /** Registrations when the agents started, before the pull (not in any second of it). */
  registrationsBeforePull: number;
  peersDropped: number;
}

export class SimSupernode {
  readonly clock = new ManualClock(0);
  readonly tracker: Tracker;
  readonly scheduler: Scheduler;
  readonly pacer: SyncPacer;
  readonly stats: SupernodeStats = { scheduleCalls: 0, syncWallMs: 0, schedulerWallMs: 0, peakCallsPerSimS: 0, callsBySimS: [], scansBySimS: [], heartbeatsBySimS: [], setupRequestsBySimS: [], registrationsBeforePull: 0, peersDropped: 0 };
  private readonly queue: EventQueue;
  /** The blobs' tasks: their piece count and when the seed has piece i (it arrived from the registry). */
  private readonly tasks: ReadonlyMap<Digest, SimTask>;
  private secondStart = 0;
  private callsThisSecond = 0;

  constructor(deps: { queue: EventQueue; random?: () => number }, options: { tasks: readonly SimTask[]; scheduler?: Partial<SchedulerOptions>; syncRate?: number; syncAnswerRate?: number }) {
    this.queue = deps.queue;
    this.tasks = new Map(options.tasks.map((t) => [t.digest, t]));
    this.scheduler = new Scheduler({ clock: this.clock, ...(deps.random ? { random: deps.random } : {}) }, options.scheduler);
    this.pacer = new SyncPacer({ clock: this.clock }, { rate: options.syncRate ?? DEFAULT_SYNC_RATE, answerBytesPerS: options.syncAnswerRate ?? DEFAULT_SYNC_ANSWER_BYTES_PER_S });
    this.tracker = new Tracker({
      clock: this.clock,
      onDrop: (peer) => {
        this.stats.peersDropped++;
        this.scheduler.dropPeer(peer);
      },
    });
  }

  start(): void {
    this.tracker.start();
  }

  close(): void {
    this.tracker.close();
  }

  /** POST /api/v1/peers (no holdings: every simulated peer starts empty) then POST /api/v1/tasks, without a first schedule, for each of `digests`. */
  registerAndJoin(peerId: string, wireAddr: string, uploadSlots: number, digests: readonly Digest[]): void {
    for (let k = 0; k <= digests.length; k++) this.countIn(this.stats.setupRequestsBySimS);
    this.timed(() => {
      const peer = this.registered(peerId, wireAddr, uploadSlots);
      for (const digest of digests) this.join(peer, digest);
    });
  }

  /**
   * POST /api/v1/peers (no holdings) when the peer's agent starts, before the pull: the agent
   * registers from its start (P2pAgent.start), and its downloader registers only when it is not
   * registered. Counted apart from the pull's seconds.
   */
  registerBeforePull(peerId: string, wireAddr: string, uploadSlots: number): void {
    this.stats.registrationsBeforePull++;
    this.timed(() => this.registered(peerId, wireAddr, uploadSlots));
  }

  /**
   * POST /api/v1/tasks with a first sync (`wantSeed`): joins the task and answers that sync as the
   * route does, a request that schedules like a sync (counted with them) and carries the heartbeat's
   * report (`reported`) as a sync batch does (sync() takes it). Undefined: the route's
   * 401 (unknown peer: register again).
   */
  createTask(peerId: string, digest: Digest, first: { wantSeed: number }, reported: boolean): SimSyncAnswer | undefined {
    const peer = this.tracker.get(peerId);
    if (!peer) return undefined;
    this.timed(() => this.join(peer, digest));
    return this.sync(peerId, digest, { have: [], wantSeed: first.wantSeed, badParents: [] }, reported);
  }

  private registered(peerId: string, wireAddr: string, uploadSlots: number): PeerRecord {
    // A live peer registers again with its own token (as the real one does): its record stays.
    return this.tracker.get(peerId) ?? this.tracker.register(peerId, wireAddr, uploadSlots).peer;
  }

  private join(peer: PeerRecord, digest: Digest): void {
    if (!this.scheduler.holds(digest, peer.peerId)) this.scheduler.join(digest, this.task(digest).pieceCount, peer);
  }

  private task(digest: Digest): SimTask {
    const task = this.tasks.get(digest);
    if (!task) throw new Error(`the simulation has no blob ${digest}`);
    return task;
  }

  /** POST /api/v1/heartbeat: the route's answer, or undefined for its 404 (unknown peer). */
  heartbeat(peerId: string): HeartbeatResponse | undefined {
    this.countIn(this.stats.heartbeatsBySimS);
    return this.timed(() => {
      return this.tracker.heartbeat(peerId) ? this.pacer.heartbeatAnswer(HEARTBEAT_MS) : undefined;
    });
  }

  private countIn(bySecond: number[]): void {
    const second = Math.floor(this.queue.now / 1000);
    bySecond[second] = (bySecond[second] ?? 0) + 1;
  }

  /**
   * One item of a batch of syncs as the route reads it (its task by digest or by short name,
   * syncItemTask, which throws the route's errors): its sync as read and the schedule; undefined
   * is the route's 404 (unknown peer or task).
   */
  syncItem(peerId: string, item: SyncBatchItem, reported: boolean): { readonly body: SyncRequest; readonly schedule: SimSyncAnswer } | undefined {
    const peer = this.tracker.get(peerId);
    if (!peer) return undefined;
    const { digest, body } = syncItemTask(peer, item);
    const schedule = this.sync(peerId, digest, body, reported);
    return schedule && { body, schedule };
  }

  /** POST /api/v1/tasks/:digest/sync (its batch carried the heartbeat's report: `reported`); undefined is the route's 404 (unknown peer or task). */
  sync(peerId: string, digest: Digest, body: SyncRequest, reported: boolean): SimSyncAnswer | undefined {
    const t = performance.now();
    const task = this.task(digest);
    return this.timed(() => {
      const peer = this.tracker.get(peerId);
      if (!peer || !this.scheduler.holds(digest, peerId)) return undefined;
      // A batch that carries the heartbeat's report is the peer's heartbeat, as the route takes it.
      if (reported) this.tracker.heartbeat(peerId);
      takeSyncReports(this, peer, digest, body);
      this.countCall();
      // As the route does: the seed "has" a piece once its hash is known (it arrived from the registry).
      const now = this.queue.now;
      const scans = this.scheduler.scans;
      const answer = scheduleSync(this, peer, digest, body, (i) => task.seedHasAt(i, now));
      const second = Math.floor(now / 1000);
      this.stats.scansBySimS[second] = (this.stats.scansBySimS[second] ?? 0) + this.scheduler.scans - scans;
      this.stats.syncWallMs += performance.now() - t;
      return answer;
    });
  }

  private countCall(): void {
    this.stats.scheduleCalls++;
    const second = Math.floor(this.queue.now / 1000);
    if (second !== this.secondStart) {
      this.secondStart = second;
      this.callsThisSecond = 0;
    }
    this.callsThisSecond++;
    this.stats.callsBySimS[second] = this.callsThisSecond;
    if (this.callsThisSecond > this.stats.peakCallsPerSimS) this.stats.peakCallsPerSimS = this.callsThisSecond;
  }

  /** Moves the supernode's clock to the simulated now (running the tracker's sweep when due), then runs fn on the wall clock. */
  private timed<T>(fn: () => T): T {
    const lag = this.queue.now - this.clock.now();
    if (lag > 0) this.clock.advance(lag);
    const t = performance.now();
    try {
      return fn();
    } finally {
      this.stats.schedulerWallMs += performance.now() - t;
    }
  }
}
