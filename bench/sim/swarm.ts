// One task (a blob of `pieces` pieces) distributed to a set of peers on the simulated network:
// each peer keeps up to `slotsPerPeer` piece requests in flight, asks the scheduler what to fetch
// next whenever a slot frees, and reports every piece it completes. The scheduler's answers are
// checked (a piece the peer lacks, from a host that holds it): a wrong answer is a scheduler bug.
import type { EventQueue } from './event-queue.ts';
import type { HostId, SimNetwork } from './network.ts';
import type { SimScheduler } from './scheduler.ts';

export interface SwarmOptions {
  pieces: number;
  pieceBytes: number;
  slotsPerPeer: number;
  /** When a peer with nothing in flight got no work, it asks again after this long. */
  retryMs: number;
  /** Start time of each peer (default: all at 0, the simultaneous fan-out). */
  startMs?: (peerIndex: number) => number;
  /** Give up (and throw) if the simulated time passes this. */
  maxSimMs?: number;
}

export interface SwarmResult {
  /** Completion time of each peer, ms (in the order of `peers`). */
  doneMs: number[];
  allDoneMs: number;
  seedSentBytes: number;
  /** Assignments the scheduler made, and the wall-clock ms spent inside the scheduler. */
  decisions: number;
  schedulerWallMs: number;
  events: number;
}

interface PeerState {
  id: HostId;
  have: Uint8Array;
  count: number;
  inFlight: Set<number>;
  doneMs: number;
  retrying: boolean;
}

export function runSwarm(queue: EventQueue, network: SimNetwork, seed: HostId, peers: readonly HostId[], scheduler: SimScheduler, options: SwarmOptions): SwarmResult {
  const holds = new Map<HostId, Uint8Array>();
  const states: PeerState[] = peers.map((id) => ({ id, have: new Uint8Array(options.pieces), count: 0, inFlight: new Set(), doneMs: NaN, retrying: false }));
  for (const s of states) holds.set(s.id, s.have);
  let decisions = 0;
  let schedulerWallMs = 0;
  let remaining = states.length;
  const timed = <T>(fn: () => T): T => {
    const t = performance.now();
    try {
      return fn();
    } finally {
      schedulerWallMs += performance.now() - t;
    }
  };

  const fill = (p: PeerState): void => {
    p.retrying = false;
    if (p.count === options.pieces) return;
    const free = options.slotsPerPeer - p.inFlight.size;
    if (free <= 0) return;
    const assignments = timed(() => scheduler.assign(p.id, free, queue.now));
    if (assignments.length > free) throw new Error(`scheduler assigned ${assignments.length} pieces to peer ${p.id} with ${free} free slots`);
    for (const a of assignments) {
      if (!(a.piece >= 0 && a.piece < options.pieces) || p.have[a.piece] || p.inFlight.has(a.piece)) {
        throw new Error(`scheduler assigned piece ${a.piece} to peer ${p.id}, which has it, is fetching it, or it does not exist`);
      }
      if (a.from !== seed && !holds.get(a.from)?.[a.piece]) throw new Error(`scheduler sent peer ${p.id} to host ${a.from} for piece ${a.piece}, which it does not hold`);
      decisions++;
      p.inFlight.add(a.piece);
      network.transfer(a.from, p.id, options.pieceBytes, () => {
        p.inFlight.delete(a.piece);
        p.have[a.piece] = 1;
        p.count++;
        timed(() => scheduler.pieceDone(p.id, a.piece, a.from, queue.now));
        if (p.count === options.pieces) {
          p.doneMs = queue.now;
          remaining--;
        }
        fill(p);
      });
    }
    if (p.inFlight.size === 0 && !p.retrying) {
      p.retrying = true;
      queue.after(options.retryMs, () => fill(p));
    }
  };

  timed(() => scheduler.start({ pieces: options.pieces, seed, peers }));
  for (const [i, p] of states.entries()) queue.at(queue.now + (options.startMs?.(i) ?? 0), () => fill(p));
  const eventsBefore = queue.eventsRun;
  queue.run({ stop: () => remaining === 0, untilMs: options.maxSimMs });
  if (remaining > 0) throw new Error(`${remaining} of ${states.length} peers did not finish by ${queue.now} ms of simulated time`);
  const doneMs = states.map((s) => s.doneMs);
  return { doneMs, allDoneMs: Math.max(...doneMs), seedSentBytes: network.sentBytes(seed), decisions, schedulerWallMs, events: queue.eventsRun - eventsBefore };
}
