// A simple scheduler for the simulation's own tests and as a yardstick: rarest piece first among
// those the peer lacks, fetched from the holder with the fewest uploads in progress, peers before
// the seed, at most `maxUploadsPerHost` uploads per holder. Not Pollen's scheduler (that one lives
// in supernode/ and plugs in through the same SimScheduler interface).
import type { HostId } from './network.ts';
import type { PieceAssignment, SimScheduler } from './scheduler.ts';

export class ReferenceScheduler implements SimScheduler {
  private pieces = 0;
  private seed: HostId = -1;
  private holders: HostId[][] = [];
  private have = new Map<HostId, Uint8Array>();
  private fetching = new Map<HostId, Set<number>>();
  private uploads = new Map<HostId, number>();
  decisions = 0;

  constructor(private readonly options: { maxUploadsPerHost: number; random?: () => number } = { maxUploadsPerHost: 8 }) {}

  start(task: { pieces: number; seed: HostId; peers: readonly HostId[] }): void {
    this.pieces = task.pieces;
    this.seed = task.seed;
    this.holders = Array.from({ length: task.pieces }, () => []);
    for (const p of task.peers) {
      this.have.set(p, new Uint8Array(task.pieces));
      this.fetching.set(p, new Set());
    }
  }

  assign(peer: HostId, free: number): PieceAssignment[] {
    const have = this.have.get(peer);
    const fetching = this.fetching.get(peer);
    if (!have || !fetching) throw new Error(`peer ${peer} is not part of the task`);
    const random = this.options.random ?? Math.random;
    const candidates: number[] = [];
    for (let i = 0; i < this.pieces; i++) if (!have[i] && !fetching.has(i)) candidates.push(i);
    // Rarest first; random order among equally rare pieces.
    const order = candidates.map((i) => ({ i, key: this.holders[i]!.length + random() * 0.5 })).sort((a, b) => a.key - b.key);
    const out: PieceAssignment[] = [];
    for (const { i } of order) {
      if (out.length >= free) break;
      const from = this.pickSource(i);
      if (from === undefined) continue;
      this.uploads.set(from, (this.uploads.get(from) ?? 0) + 1);
      fetching.add(i);
      out.push({ piece: i, from });
      this.decisions++;
    }
    return out;
  }

  private pickSource(piece: number): HostId | undefined {
    let best: HostId | undefined;
    let bestLoad = Infinity;
    for (const h of this.holders[piece]!) {
      const load = this.uploads.get(h) ?? 0;
      if (load < this.options.maxUploadsPerHost && load < bestLoad) {
        best = h;
        bestLoad = load;
      }
    }
    if (best !== undefined) return best;
    return (this.uploads.get(this.seed) ?? 0) < this.options.maxUploadsPerHost ? this.seed : undefined;
  }

  pieceDone(peer: HostId, piece: number, from: HostId): void {
    this.have.get(peer)![piece] = 1;
    this.fetching.get(peer)!.delete(piece);
    this.holders[piece]!.push(peer);
    this.uploads.set(from, (this.uploads.get(from) ?? 1) - 1);
  }
}
