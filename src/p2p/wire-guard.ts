// Frames the incoming byte stream of a BitTorrent connection before bittorrent-protocol sees it,
// which buffers whatever length a peer announces: the 68-byte handshake must start with 19
// ("BitTorrent protocol"), and every length prefix must be at most `maxMessageBytes`.
export class WireGuard {
  private readonly maxMessageBytes: number;
  private handshakeLeft = 68;
  private lengthBytes: number[] = [];
  private bodyLeft = 0;

  constructor(options: { maxMessageBytes: number }) {
    this.maxMessageBytes = options.maxMessageBytes;
  }

  /** Returns a reason when the chunk breaks the framing; the connection must then be dropped. */
  check(chunk: Uint8Array): string | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.handshakeLeft > 0) {
        if (this.handshakeLeft === 68 && chunk[i] !== 19) return `not a BitTorrent handshake (first byte ${chunk[i]})`;
        const n = Math.min(this.handshakeLeft, chunk.length - i);
        this.handshakeLeft -= n;
        i += n;
      } else if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= n;
        i += n;
      } else {
        this.lengthBytes.push(chunk[i]!);
        i++;
        if (this.lengthBytes.length === 4) {
          const [a, b, c, d] = this.lengthBytes as [number, number, number, number];
          const len = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
          this.lengthBytes = [];
          if (len > this.maxMessageBytes) return `message of ${len} bytes exceeds the ${this.maxMessageBytes}-byte cap`;
          this.bodyLeft = len;
        }
      }
    }
    return undefined;
  }
}
