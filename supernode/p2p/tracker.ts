// Registered peers and their heartbeats. A peer that stops heart-beating is dropped within
// PEER_TTL_MS (checked every SWEEP_MS), and the scheduler forgets what it held.
import type { Clock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';

export const HEARTBEAT_MS = 1_000;
/**
 * Generous against starved event loops and full links (a heartbeat that loses packets behind bulk
 * flows in a drop-tail queue backs off for seconds; 8 s dropped 33 live peers in the 16-peer bed).
 * A peer that really died is found sooner by its children, whose connections to it fail.
 */
export const PEER_TTL_MS = 20_000;
const SWEEP_MS = 500;
const FAILURE_DECAY_MS = 10_000;

export interface PeerRecord {
  readonly peerId: string;
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
  readonly tasks: Set<Digest>;
}

export class Tracker {
  private readonly clock: Clock;
  private readonly onDrop: (peer: PeerRecord) => void;
  private readonly peers = new Map<string, PeerRecord>();
  private timer: { cancel(): void } | undefined;

  constructor(deps: { clock: Clock; onDrop: (peer: PeerRecord) => void }) {
    this.clock = deps.clock;
    this.onDrop = deps.onDrop;
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

  register(peerId: string, wireAddr: string, uploadSlots: number): PeerRecord {
    const now = this.clock.now();
    const known = this.peers.get(peerId);
    if (known) {
      known.wireAddr = wireAddr;
      known.uploadSlots = uploadSlots;
      known.lastSeen = now;
      return known;
    }
    const peer: PeerRecord = { peerId, wireAddr, uploadSlots, lastSeen: now, failures: 0, corruptions: 0, failuresDecayedAt: now, picks: 0, tasks: new Set() };
    this.peers.set(peerId, peer);
    return peer;
  }

  /** Returns false for an unknown peer (it must register again, with its holdings). */
  heartbeat(peerId: string): boolean {
    const peer = this.peers.get(peerId);
    if (!peer) return false;
    peer.lastSeen = this.clock.now();
    peer.picks = Math.floor(peer.picks / 2);
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
    const deadline = this.clock.now() - PEER_TTL_MS;
    for (const peer of this.peers.values()) {
      if (peer.lastSeen < deadline) {
        this.peers.delete(peer.peerId);
        this.onDrop(peer);
      }
    }
  }
}
