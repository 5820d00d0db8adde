// The uploader's slots: at most `slots` children unchoked at once; the others wait in the order
// they came and get the next free slot. Separate from the uploader's sockets so the simulation
// (bench/sim/simulated-peer.ts) runs this rule and not a copy of it.

/** A child connection as the slots see it. */
export interface SlotHolder {
  readonly isClosed: boolean;
  unchoke(): void;
}

export class UploadSlots<C extends SlotHolder> {
  private readonly unchoked = new Set<C>();
  private readonly waiting: C[] = [];
  private readonly slots: number;

  constructor(options: { slots: number }) {
    this.slots = options.slots;
  }

  /** A ready child: unchoked now if a slot is free, else it waits its turn. */
  admit(conn: C): void {
    if (this.unchoked.size < this.slots) {
      this.unchoked.add(conn);
      conn.unchoke();
    } else {
      this.waiting.push(conn);
    }
  }

  /** The child went away: its slot (or its place in line) goes to the next. */
  release(conn: C): void {
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

  private unchokeNext(): void {
    while (this.unchoked.size < this.slots) {
      const next = this.waiting.shift();
      if (!next) return;
      if (next.isClosed) continue;
      this.unchoked.add(next);
      next.unchoke();
    }
  }
}
