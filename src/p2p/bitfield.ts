// A piece bitfield in BitTorrent bit order (piece 0 is the high bit of byte 0), with the few
// operations the scheduler and downloader need. Sized once; indexes outside are refused.
export class Bitfield {
  readonly length: number;
  readonly bytes: Uint8Array;
  private ones = 0;
  /** No missing piece comes before this one (prefixLength goes on from here instead of from 0). */
  private prefixFrom = 0;

  constructor(length: number, bytes?: Uint8Array) {
    this.length = length;
    this.bytes = new Uint8Array(Math.ceil(length / 8));
    if (bytes) {
      this.bytes.set(bytes.subarray(0, this.bytes.length));
      // Spare bits past the end must be zero; clear them rather than trust the sender.
      const spare = this.bytes.length * 8 - length;
      if (spare > 0) this.bytes[this.bytes.length - 1]! &= (0xff << spare) & 0xff;
      for (const b of this.bytes) this.ones += popcount(b);
    }
  }

  static full(length: number): Bitfield {
    const b = new Bitfield(length);
    for (let i = 0; i < length; i++) b.set(i);
    return b;
  }

  static fromBase64(length: number, s: string): Bitfield {
    return new Bitfield(length, Buffer.from(s, 'base64'));
  }

  toBase64(): string {
    return Buffer.from(this.bytes).toString('base64');
  }

  get count(): number {
    return this.ones;
  }

  get complete(): boolean {
    return this.ones === this.length;
  }

  has(i: number): boolean {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) return false;
    return (this.bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0;
  }

  /** Sets bit `i`; returns false when it was already set or out of range. */
  set(i: number): boolean {
    if (!Number.isInteger(i) || i < 0 || i >= this.length || this.has(i)) return false;
    this.bytes[i >> 3]! |= 0x80 >> (i & 7);
    this.ones++;
    return true;
  }

  clear(i: number): void {
    if (!this.has(i)) return;
    this.bytes[i >> 3]! &= ~(0x80 >> (i & 7)) & 0xff;
    this.ones--;
    if (i < this.prefixFrom) this.prefixFrom = i;
  }

  /**
   * Number of leading pieces that are all present. It goes on from where the last call stopped (a
   * piece is only taken away by `clear`, which moves that point back): the piece picker asks at every
   * pick, and walking from piece 0 each time made each pick cost the length of the prefix.
   */
  prefixLength(): number {
    const bytes = this.bytes;
    let i = this.prefixFrom;
    while (i < this.length && (bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0) i++;
    return (this.prefixFrom = i);
  }

  *indexes(): Iterable<number> {
    for (let i = 0; i < this.length; i++) if (this.has(i)) yield i;
  }
}

function popcount(b: number): number {
  let n = 0;
  for (let x = b; x; x &= x - 1) n++;
  return n;
}
