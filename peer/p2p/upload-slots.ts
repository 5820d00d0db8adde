// The uploader's slots: at most `slots` children unchoked at once; the others wait in the order
// they came and get the next free slot. Separate from the uploader's sockets so the simulation
// (bench/sim/simulated-peer.ts) runs this rule and not a copy of it.
//
// A slot is for a child that wants pieces (BEP 3 interested): one that holds everything this host
// announced says so, and its slot goes to a child waiting (it keeps it while none waits). Before,
// a child kept its slot while it stayed: in a fan-out of 1,000 peers pulling four layers, the
// hosts' 12 slots were held by children that had caught up with them while others waited choked
// at 4-6 parents holding 30-50 pieces they lacked (simulated, paced syncs every 4 s: 3.4 s).
//
// Slots are shared by every blob the host serves. A pull fetches its layers at once, so a host's 10
// slots went to the children of the layers that asked first, and a layer whose children came later
// had none: the pieces of it that the host alone held (the seed sends each piece to one peer) went
// nowhere until a slot freed. Simulated with the bed's four layers (64 MiB, N = 8): the host
// holding the 30 % layer's last five lone pieces had 2-5 of that layer's children waiting choked
// from 1 s to 5 s while its 10 slots served the other three layers; at 7.5 s every other peer still
// lacked those five pieces. So each blob gets a slot: a child of a blob that has none unchoked
// takes one from the blob that has the most (at least two), whose most recently unchoked child goes
// back to the head of the line, choked.

/**
 * A peer's upload slots unless configured (`--upload-slots`): as many as the parents one host dials
 * across a pull's transfers (parent-pool.ts HOST_PARENT_BUDGET), so that hosts dialling each other
 * as the scheduler spreads them find a slot. With 10, a pull of the bed's four layers (each
 * transfer 3 parents) kept every uploader's 10 slots full and 2-4 more children waiting choked from
 * 0.5 s to 6 s (2,000-3,500 of ~12,500 child links; simulated 1,000 peers, 64 MiB, paced to 2.5 s),
 * and the last peers had 4-8 of their 12 parents choking them. With 12, and the rules for stranded
 * pieces (supernode/p2p/rare-pieces.ts, seed-grants.ts seedLeasesWanted), all-done 9.23 / 9.01 ->
 * 7.84 / 7.58 s (seeds 1 / 2), every peer within 1.5 x T*; one blob 6.53 -> 6.51 s, paced 6.70 ->
 * 6.67. More slots alone stranded pieces on peers with no child (12: 9.68 s, 16: 12.28).
 */
export const DEFAULT_UPLOAD_SLOTS = 12;

/** A child connection as the slots see it. */
export interface SlotHolder {
  readonly isClosed: boolean;
  /** The blob it asks for (a wire connection serves one). */
  readonly digest: string;
  unchoke(): void;
  /** BEP 3: its requests not yet answered are dropped; it asks again, here or elsewhere. */
  choke(): void;
}

export class UploadSlots<C extends SlotHolder> {
  /** In the order they were unchoked. */
  private readonly unchoked = new Set<C>();
  /** Children that want a slot, in the order they asked. */
  private readonly waiting: C[] = [];
  /** Unchoked children that want nothing we hold now: they keep their slots until a child waits. */
  private readonly idle = new Set<C>();
  private readonly slots: number;

  constructor(options: { slots: number }) {
    this.slots = options.slots;
  }

  /**
   * A child wants pieces we hold (BEP 3 interested): unchoked now if a slot is free, an idle child
   * holds one or its blob has none; else it waits its turn.
   */
  interested(conn: C): void {
    if (this.unchoked.has(conn)) return void this.idle.delete(conn);
    if (this.waiting.includes(conn)) return;
    if (this.unchoked.size < this.slots) return this.unchoke(conn);
    const victim = this.idle.values().next().value ?? (this.slotsOf(conn.digest) === 0 ? this.victim() : undefined);
    if (victim) {
      this.unchoked.delete(victim);
      victim.choke();
      // An idle child wants nothing: it asks again when it does. A busy one goes to the head of the line.
      if (!this.idle.delete(victim)) this.waiting.unshift(victim);
      return this.unchoke(conn);
    }
    this.waiting.push(conn);
  }

  /**
   * A child wants nothing we hold now (BEP 3 not interested): it leaves the line, and its slot goes
   * to the first child waiting (it keeps the slot while none waits: no choke to take back later).
   */
  notInterested(conn: C): void {
    const w = this.waiting.indexOf(conn);
    if (w >= 0) return void this.waiting.splice(w, 1);
    if (!this.unchoked.has(conn)) return;
    if (!this.waiting.some((c) => !c.isClosed)) return void this.idle.add(conn);
    this.unchoked.delete(conn);
    conn.choke();
    this.unchokeNext();
  }

  /** The child went away: its slot (or its place in line) goes to the next. */
  release(conn: C): void {
    this.idle.delete(conn);
    if (this.unchoked.delete(conn)) this.unchokeNext();
    const w = this.waiting.indexOf(conn);
    if (w >= 0) this.waiting.splice(w, 1);
  }

  get unchokedCount(): number {
    return this.unchoked.size;
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  private unchoke(conn: C): void {
    this.unchoked.add(conn);
    conn.unchoke();
  }

  private slotsOf(digest: string): number {
    let n = 0;
    for (const c of this.unchoked) if (c.digest === digest) n++;
    return n;
  }

  /** The most recently unchoked child of the blob with the most slots, if that blob has two or more. */
  private victim(): C | undefined {
    const count = new Map<string, number>();
    let most = 1;
    let blob: string | undefined;
    for (const c of this.unchoked) {
      const n = (count.get(c.digest) ?? 0) + 1;
      count.set(c.digest, n);
      if (n > most) {
        most = n;
        blob = c.digest;
      }
    }
    if (blob === undefined) return undefined;
    let last: C | undefined;
    for (const c of this.unchoked) if (c.digest === blob) last = c;
    return last;
  }

  /** A freed slot goes to the first in line whose blob has no slot, else to the first in line. */
  private unchokeNext(): void {
    while (this.unchoked.size < this.slots) {
      for (let k = this.waiting.length - 1; k >= 0; k--) if (this.waiting[k]!.isClosed) this.waiting.splice(k, 1);
      if (this.waiting.length === 0) return;
      let at = this.waiting.findIndex((c) => this.slotsOf(c.digest) === 0);
      if (at < 0) at = 0;
      const [next] = this.waiting.splice(at, 1);
      this.unchoke(next!);
    }
  }
}
