// Frames the incoming byte stream of a BitTorrent connection before bittorrent-protocol sees it:
// the 68-byte handshake must start with 19 ("BitTorrent protocol"), and every length prefix must
// be at most `maxMessageBytes` (the library would buffer whatever length a peer announces). Whole
// frames are handed on in one piece: WireConnection parses some itself and hands the others to the
// library's parser one message at a time (re-concatenating its buffer on every chunk was quadratic
// for a 256 KiB block arriving in small TCP reads).
// A frame that spans reads is copied into one buffer allocated at its known length as the reads
// come (Buffer.concat of the ~180 segments of a block on a shaped link cost 20 times more: it
// was the largest item in a peer's profile); a frame inside one read is passed on as a view.
// A caller that reads into one reused buffer (a socket's `onread`) says so, and frames inside one
// read are copied (they are small: whole blocks never fit in one read).
// Frames of exactly the pool's size (a piece message of one whole block) are filled into buffers
// from a BlockPool, which the downloader gives back once the block is stored.
import type { BlockPool } from './block-pool.ts';

/**
 * The payload length (id included) of each message bittorrent-protocol parses that has a fixed
 * one: choke, unchoke, interested, uninterested and have (BEP 3), port, and suggest, have-all,
 * have-none and allowed-fast (BEP 6). The library reads a short one as if zeros followed (a 2-byte
 * have named piece 0).
 */
const FIXED_LENGTHS = new Map([[0, 1], [1, 1], [2, 1], [3, 1], [4, 5], [9, 3], [0x0d, 5], [0x0e, 1], [0x0f, 1], [0x11, 5]]);

/** Whether `frame` (length prefix included, after the handshake) is such a message of another length. */
export function wrongFixedLength(frame: Buffer): boolean {
  const want = frame.length > 4 ? FIXED_LENGTHS.get(frame[4]!) : undefined;
  return want !== undefined && frame.length - 4 !== want;
}

export class WireGuard {
  private readonly maxMessageBytes: number;
  private readonly pool: BlockPool | undefined;
  private handshakeDone = false;
  /** The frame being filled (undefined while its 4-byte length prefix is incomplete). */
  private frame: Buffer | undefined;
  private have = 0;
  private readonly prefix = Buffer.alloc(4);
  private prefixHave = 0;

  constructor(options: { maxMessageBytes: number; pool?: BlockPool }) {
    this.maxMessageBytes = options.maxMessageBytes;
    this.pool = options.pool;
  }

  /**
   * Splits `chunk` into complete frames; returns a reason instead when the framing is broken.
   * `transient`: the caller reuses `chunk`'s memory for its next read, so a frame found whole
   * inside it is copied out instead of handed on as a view.
   */
  push(chunk: Buffer, transient = false): Buffer[] | string {
    const frames: Buffer[] = [];
    let rest = chunk;
    while (rest.length > 0) {
      if (!this.frame) {
        if (!this.handshakeDone) {
          if (rest[0] !== 19) return `not a BitTorrent handshake (first byte ${rest[0]})`;
          this.frame = Buffer.allocUnsafe(68);
          this.have = 0;
        } else {
          const fromThisRead = this.prefixHave === 0;
          const take = Math.min(4 - this.prefixHave, rest.length);
          rest.copy(this.prefix, this.prefixHave, 0, take);
          this.prefixHave += take;
          if (this.prefixHave < 4) break;
          this.prefixHave = 0;
          const len = this.prefix.readUInt32BE(0);
          if (len > this.maxMessageBytes) return `message of ${len} bytes exceeds the ${this.maxMessageBytes}-byte cap`;
          if (fromThisRead && rest.length >= 4 + len) {
            // The whole frame is in this read: hand on a view of it (a copy when the read is transient).
            frames.push(transient ? Buffer.from(rest.subarray(0, 4 + len)) : rest.subarray(0, 4 + len));
            rest = rest.subarray(4 + len);
            continue;
          }
          rest = rest.subarray(take);
          this.frame = this.pool && 4 + len === this.pool.frameBytes ? this.pool.acquire() : Buffer.allocUnsafe(4 + len);
          this.prefix.copy(this.frame, 0);
          this.have = 4;
        }
      }
      const frame = this.frame;
      const take = Math.min(frame.length - this.have, rest.length);
      frame.set(rest.subarray(0, take), this.have);
      this.have += take;
      rest = rest.subarray(take);
      if (this.have === frame.length) {
        frames.push(frame);
        this.frame = undefined;
        this.have = 0;
        this.handshakeDone = true;
      }
    }
    return frames;
  }
}
