// How many children each parent serves, as the scheduler's offers made them: a child dials what it
// is offered (up to the room in its pool) and keeps a parent while it holds anything useful, so its
// most recent offers are about its parents. A parent's children share its uplink and its upload
// slots; one offered to more children than it has slots keeps the rest choked. Picks (recent
// offers, halved every second) forget a parent's children a few seconds after they came, while
// they stay for the rest of their pull: at 1,000 simulated peers syncing every 2.5 s (paced), the
// last peers' parents had 10-11 children each against the median peer's 8, and each gave them a
// tenth of its uplink (their downlinks 60 % used, the median's 90 %). The scheduler weighs a
// parent's children per upload slot against its share of the pieces the asker lacks (parent-rank.ts
// LOAD_WEIGHT). Simulated 64 MiB, 1,000 peers, seed 1, before -> after: paced to 2.5 s
// (`--sync-rate 400`) all-done 8.28 -> 7.73 s, p99 7.61 -> 7.40, median 6.86 -> 6.85 (seeds 2-4:
// 8.06 / 7.81 / 8.20 -> 7.67 / 7.72 / 7.73 s); paced to 4 s
// (`--sync-rate 250`) 9.55 -> 9.09 s; not paced 6.65 -> 6.72 s (seed 2: 6.79 -> 6.64; medians
// and p99s within 0.04 s). More in bench/README.md (fifty-first session).
import type { PeerRecord } from './tracker.ts';

/** The parents remembered per child: its pool holds at most this many per transfer (peer/p2p/parent-pool.ts MAX_PARENTS). */
export const PARENTS_PER_CHILD = 8;

export class ParentLoad {
  /** Each child's most recently offered parents, oldest first. */
  private readonly parentsOf = new Map<string, PeerRecord[]>();

  /** `child` was offered `parents`: each counts it as a child, its oldest offers beyond PARENTS_PER_CHILD no longer. */
  offered(child: string, parents: readonly PeerRecord[]): void {
    let list = this.parentsOf.get(child);
    if (!list) this.parentsOf.set(child, (list = []));
    for (const p of parents) {
      const at = list.indexOf(p);
      if (at >= 0) list.splice(at, 1);
      else p.children++;
      list.push(p);
    }
    while (list.length > PARENTS_PER_CHILD) list.shift()!.children--;
  }

  /** `child` holds the whole blob or left the task: its parents no longer serve it. */
  done(child: string): void {
    const list = this.parentsOf.get(child);
    if (!list) return;
    for (const p of list) p.children--;
    this.parentsOf.delete(child);
  }

  /** Forgets every child (the task went): their parents' counts drop with them. */
  clear(): void {
    for (const child of [...this.parentsOf.keys()]) this.done(child);
  }
}
