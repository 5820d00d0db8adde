// Buffers for incoming piece messages, reused instead of allocated per block. A fresh 256 KiB
// buffer is paid for in page faults when first written: on loopback a downloading peer spent about
// a third of its CPU on them (bench/peer-cpu.ts). The owner of a block gives its buffer back with
// `release` once the block is verified and written (the content store keeps no reference after
// writeAt resolves); a buffer never given back is garbage-collected as usual, and anything that is
// not a lent buffer of this pool is ignored. Each block must be released at most once.
export class BlockPool {
  readonly frameBytes: number;
  private readonly maxFree: number;
  private readonly free: ArrayBuffer[] = [];
  private readonly lent = new WeakSet<ArrayBuffer>();
  private out = 0;

  constructor(options: { frameBytes: number; maxFree: number }) {
    this.frameBytes = options.frameBytes;
    this.maxFree = options.maxFree;
  }

  /** A buffer of exactly `frameBytes` (contents undefined). */
  acquire(): Buffer {
    // allocUnsafeSlow: a buffer of its own, not zero-filled (new ArrayBuffer would clear it first).
    const ab = this.free.pop() ?? (Buffer.allocUnsafeSlow(this.frameBytes).buffer as ArrayBuffer);
    this.lent.add(ab);
    this.out++;
    return Buffer.from(ab);
  }

  /** Gives back the buffer under `view` (any view into a lent buffer). */
  release(view: Uint8Array): void {
    const ab = view.buffer;
    if (!(ab instanceof ArrayBuffer) || !this.lent.has(ab)) return;
    this.lent.delete(ab);
    this.out--;
    if (this.free.length < this.maxFree) this.free.push(ab);
  }

  /** True when `view` lies in a buffer lent by this pool and not given back yet. */
  owns(view: Uint8Array): boolean {
    return view.buffer instanceof ArrayBuffer && this.lent.has(view.buffer);
  }

  /** Buffers lent and not given back (one never given back counts until the process ends). */
  get lentCount(): number {
    return this.out;
  }

  get freeCount(): number {
    return this.free.length;
  }
}
