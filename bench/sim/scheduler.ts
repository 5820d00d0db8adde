// The seam where a piece scheduler plugs into the simulation: the same questions the supernode's
// scheduler answers for real peers (which pieces should this peer fetch next, and from whom?) and
// the progress reports it gets. The real scheduler (supernode/) is driven through an adapter that
// implements this interface; tests use the reference scheduler in reference-scheduler.ts.
import type { HostId } from './network.ts';

export interface PieceAssignment {
  piece: number;
  /** The host to fetch from: the seed or a peer that holds the piece. */
  from: HostId;
}

export interface SimScheduler {
  /** The task: piece count, and the seed host that holds every piece (back-to-source). */
  start(task: { pieces: number; seed: HostId; peers: readonly HostId[] }): void;
  /** A peer has `free` request slots: up to that many pieces it lacks and is not fetching, each with a source. */
  assign(peer: HostId, free: number, nowMs: number): PieceAssignment[];
  /** A peer verified a piece it fetched from `from` (it can now serve it). */
  pieceDone(peer: HostId, piece: number, from: HostId, nowMs: number): void;
}
