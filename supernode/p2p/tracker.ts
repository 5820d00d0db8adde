// Registered peers, their credentials and heartbeats. Each peer holds its own token (issued at
// registration, kept as a hash); a live peer's id is registered again only with that token. A peer
// that stops heart-beating is dropped within PEER_TTL_MS (checked every SWEEP_MS), and everything
// about it goes (onDrop: the scheduler forgets what it held).
import type { Clock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import type { HeartbeatBody } from '../../src/p2p/supernode-api.ts';
import { taskName } from '../../src/p2p/sync-answer.ts';
import { issuePeerToken, parsePeerToken, tokenMatches } from './peer-token.ts';

/**
 * How often idle peers heart-beat (told at registration; a peer moving bytes reports every second,
 * for the status page's rates). A heartbeat is a TLS request the supernode answers: at 1 s, 10,000
 * idle peers sent 10,000 a second. PEER_TTL_MS is four of them.
 */
export const HEARTBEAT_MS = 5_000;
/**
 * Generous against starved event loops and full links (a heartbeat that loses packets behind bulk
 * flows in a drop-tail queue backs off for seconds; 8 s dropped 33 live peers in the 16-peer bed).
 * A peer that really died is found sooner by its children, whose connections to it fail.
 */
export const PEER_TTL_MS = 20_000;
const SWEEP_MS = 500;
/** A peer's recent picks (offers as a parent, which lower its score) halve this often. */
const PICKS_HALF_LIFE_MS = 1_000;
const FAILURE_DECAY_MS = 10_000;
/** Reports (bad or corrupt parents) that count, per reporting peer and REPORT_WINDOW_MS. */
export const REPORTS_PER_WINDOW = 32;
export const REPORT_WINDOW_MS = 10_000;
/** Live peers at most (a flood of registrations from members cannot grow the map forever). */
export const MAX_PEERS = 100_000;

export interface PeerRecord {
  readonly peerId: string;
  /** sha256 of the secret part of the peer's token (see http/peer-token.ts). */
  readonly tokenHash: Buffer;
  wireAddr: string;
  uploadSlots: number;
  lastSeen: number;
  /** Bad pieces or failures reported against this peer by others (decays on success). */
  failures: number;
  /** Bad pieces alone: while non-zero the scheduler does not count this peer's pieces as held. */
  corruptions: number;
  failuresDecayedAt: number;
  /** How often the scheduler recently handed this peer out as a parent (spreads load). */
  picks: number;
  /** Children the scheduler's offers gave it across its tasks, until each holds the whole blob (parent-load.ts). */
  children: number;
  /** Reports this peer made that counted in the current window (bounded rate). */
  reports: number;
  reportsWindowAt: number;
  readonly tasks: Set<Digest>;
  /** Its tasks by short name (src/p2p/sync-answer.ts taskName), null where two share one (addTask). */
  readonly taskNames: Map<string, Digest | null>;
  /** What the peer last reported with a heartbeat (version, store use, byte totals), if anything. */
  report?: HeartbeatBody;
}

/** Counts `digest` among the peer's tasks, and under its short name (a batch item may name it so: task-sync.ts syncItemTask). */
export function addTask(peer: PeerRecord, digest: Digest): void {
  if (peer.tasks.has(digest)) return;
  peer.tasks.add(digest);
  const name = taskName(digest);
  peer.taskNames.set(name, peer.taskNames.has(name) ? null : digest);
}

/**
 * Forgets `digest` among the peer's tasks (it left the task: its store evicted the blob, or the
 * task was begun again without it), and its short name with it: a peer's tasks shrink with what it
 * holds, not only when the peer is dropped. A name two tasks shared goes to the one left, if one is.
 */
export function removeTask(peer: PeerRecord, digest: Digest): void {
  if (!peer.tasks.delete(digest)) return;
  const name = taskName(digest);
  const named = peer.taskNames.get(name);
  if (named === digest) {
    peer.taskNames.delete(name);
  } else if (named === null) {
    const left = [...peer.tasks].filter((d) => taskName(d) === name);
    if (left.length === 0) peer.taskNames.delete(name);
    else if (left.length === 1) peer.taskNames.set(name, left[0]!);
  }
}

/** Forgets every task of the peer (it was dropped). */
export function clearTasks(peer: PeerRecord): void {
  peer.tasks.clear();
  peer.taskNames.clear();
}

export class Tracker {
  private readonly clock: Clock;
  private readonly onDrop: (peer: PeerRecord) => void;
  private readonly peers = new Map<string, PeerRecord>();
  private timer: { cancel(): void } | undefined;
  private picksDecayedAt: number;

  constructor(deps: { clock: Clock; onDrop: (peer: PeerRecord) => void }) {
    this.clock = deps.clock;
    this.onDrop = deps.onDrop;
    this.picksDecayedAt = deps.clock.now();
  }

  start(): void {
    const tick = (): void => {
      this.sweep();
      this.timer = this.clock.setTimeout(tick, SWEEP_MS);
    };
    this.timer = this.clock.setTimeout(tick, SWEEP_MS);
  }

  close(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  get size(): number {
    return this.peers.size;
  }

  /**
   * Registers `peerId` and returns its record and token. A live peer registers again (new address,
   * slots) only with its own token, which stays the same; without it the id is refused.
   */
  register(peerId: string, wireAddr: string, uploadSlots: number, token?: string): { peer: PeerRecord; token: string } {
    const now = this.clock.now();
    const known = this.peers.get(peerId);
    if (known) {
      if (token === undefined || this.authenticate(token) !== known) {
        throw new PollenError('ERR_PEER_ID_TAKEN', `peer id ${peerId} belongs to a live peer: registering it again needs that peer's token`, { peerId });
      }
      known.wireAddr = wireAddr;
      known.uploadSlots = uploadSlots;
      known.lastSeen = now;
      return { peer: known, token };
    }
    if (this.peers.size >= MAX_PEERS) throw new PollenError('ERR_SUPERNODE_UNAVAILABLE', `the supernode tracks ${MAX_PEERS} peers already`);
    const issued = issuePeerToken(peerId);
    const peer: PeerRecord = {
      peerId, tokenHash: issued.hash, wireAddr, uploadSlots, lastSeen: now,
      failures: 0, corruptions: 0, failuresDecayedAt: now, picks: 0, children: 0, reports: 0, reportsWindowAt: now, tasks: new Set(), taskNames: new Map(),
    };
    this.peers.set(peerId, peer);
    return { peer, token: issued.token };
  }

  /** The live peer a token belongs to (hashes compared in constant time), or undefined. */
  authenticate(token: string): PeerRecord | undefined {
    const parsed = parsePeerToken(token);
    const peer = parsed && this.peers.get(parsed.peerId);
    return peer && parsed && tokenMatches(parsed.hash, peer.tokenHash) ? peer : undefined;
  }

  /** Counts one report by `reporter`; false once it used its allowance for this window. */
  chargeReport(reporter: PeerRecord): boolean {
    const now = this.clock.now();
    if (now - reporter.reportsWindowAt >= REPORT_WINDOW_MS) {
      reporter.reportsWindowAt = now;
      reporter.reports = 0;
    }
    if (reporter.reports >= REPORTS_PER_WINDOW) return false;
    reporter.reports++;
    return true;
  }

  /** Returns false for an unknown peer (it must register again, with its holdings). */
  heartbeat(peerId: string, report?: HeartbeatBody): boolean {
    const peer = this.peers.get(peerId);
    if (!peer) return false;
    peer.lastSeen = this.clock.now();
    // A report may carry only what changed since the last one (SYNC_FIELDS `reportChanges`): the rest is kept.
    if (report && Object.keys(report).length > 0) peer.report = { ...peer.report, ...report };
    // Failure reports fade (a stall under load is not a lie); a liar keeps being reported and banned locally.
    if (this.clock.now() - peer.failuresDecayedAt >= FAILURE_DECAY_MS) {
      peer.failures = Math.floor(peer.failures / 2);
      peer.corruptions = Math.floor(peer.corruptions / 2);
      peer.failuresDecayedAt = this.clock.now();
    }
    return true;
  }

  /** Every registered peer (preheat jobs choose among them). */
  list(): PeerRecord[] {
    return [...this.peers.values()];
  }

  get(peerId: string): PeerRecord | undefined {
    return this.peers.get(peerId);
  }

  sweep(): void {
    const now = this.clock.now();
    const deadline = now - PEER_TTL_MS;
    // Picks fade on the clock, not per heartbeat: the heartbeat's period is the peers' business.
    const halvings = Math.floor((now - this.picksDecayedAt) / PICKS_HALF_LIFE_MS);
    if (halvings > 0) this.picksDecayedAt += halvings * PICKS_HALF_LIFE_MS;
    for (const peer of this.peers.values()) {
      if (peer.lastSeen < deadline) {
        this.peers.delete(peer.peerId);
        this.onDrop(peer);
      } else if (halvings > 0 && peer.picks > 0) {
        peer.picks = peer.picks >>> Math.min(halvings, 31);
      }
    }
  }
}
