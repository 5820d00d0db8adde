// Frames the incoming byte stream of a BitTorrent connection before bittorrent-protocol sees it:
// the 68-byte handshake must start with 19 ("BitTorrent protocol"), and every length prefix must
// be at most `maxMessageBytes` (the library buffers whatever length a peer announces). Whole frames
// are handed on in one piece, because the library re-concatenates its buffer on every chunk it gets
// (quadratic for a 256 KiB block arriving in small TCP reads).
export class WireGuard {
  private readonly maxMessageBytes: number;
  private handshakeDone = false;
  private parts: Buffer[] = [];
  private have = 0;
  /** Bytes of the current frame still expected; -1 while its 4-byte length is incomplete. */
  private need = 68;

  constructor(options: { maxMessageBytes: number }) {
    this.maxMessageBytes = options.maxMessageBytes;
  }

  /** Splits `chunk` into complete frames; returns a reason instead when the framing is broken. */
  push(chunk: Buffer): Buffer[] | string {
    const frames: Buffer[] = [];
    let rest = chunk;
    while (rest.length > 0 || this.have === this.need) {
      if (this.have === this.need) {
        frames.push(this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.have));
        this.parts = [];
        this.have = 0;
        this.handshakeDone = true;
        this.need = -1;
        continue;
      }
      if (!this.handshakeDone && this.have === 0 && rest[0] !== 19) return `not a BitTorrent handshake (first byte ${rest[0]})`;
      if (this.handshakeDone && this.need < 0) {
        // Still collecting the 4-byte length prefix.
        const take = Math.min(4 - this.have, rest.length);
        this.parts.push(rest.subarray(0, take));
        this.have += take;
        rest = rest.subarray(take);
        if (this.have < 4) break;
        const len = Buffer.concat(this.parts, 4).readUInt32BE(0);
        if (len > this.maxMessageBytes) return `message of ${len} bytes exceeds the ${this.maxMessageBytes}-byte cap`;
        this.need = 4 + len;
        continue;
      }
      const take = Math.min(this.need - this.have, rest.length);
      this.parts.push(rest.subarray(0, take));
      this.have += take;
      rest = rest.subarray(take);
    }
    return frames;
  }
}
