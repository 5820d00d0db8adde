// The sync channel's framing (peer/p2p/sync-channel.ts opens it, supernode/http/sync-channel.ts
// answers it): a peer's batches of syncs (POST /api/v1/syncs: the same body, the same answer) as
// length-prefixed JSON frames on one kept connection, upgraded from an HTTP request that carries
// the peer's token. A sync over HTTP/1.1 costs both ends ~550-580 us of CPU on the test machine
// (node's HTTP parser, fastify's request and reply, undici's client) for ~200 bytes of JSON; a
// frame on a kept TLS connection costs ~90 us, and its head is 4 bytes instead of ~250 (request
// line and headers, status line and headers). Syncs are what the supernode answers most: at
// 10,000 simulated peers, ~50,000 a second at the peak.
//   request frame   u32 length, then JSON {"i": id, "b": SyncBatchRequest}
//                   or {"i": id, "t": TaskBody} (a task's creation, POST /api/v1/tasks: from a
//                   supernode that names `task` in its registration's channelCalls)
//   answer frame    u32 length, then JSON {"i": id, "s": status, "b": the route's answer or an OCI error body}
// A batch of syncs is answered at once, in the order sent; a creation when the registry has
// admitted the peer (or refused it), so frames sent after it may be answered before. The id says
// which call an answer is for, and lets the peer drop one whose call it gave up on. A creation on
// the channel is a 4-byte head instead of HTTP's ~250 bytes each way: at 10,000 simulated peers
// their creations, all in a pull's first second, queued on the supernode host's downlink.
import { PollenError } from '../errors.ts';

/** The HTTP request that opens a channel: `POST` here with `Upgrade: SYNC_CHANNEL_PROTOCOL` and the peer's token. */
export const SYNC_CHANNEL_PATH = '/api/v1/syncs/channel';
export const SYNC_CHANNEL_PROTOCOL = 'pollen-syncs/1';
/** A frame's JSON at most: a sync batch's body limit over HTTP (fastify's default, 1 MiB). */
export const MAX_FRAME_BYTES = 1 << 20;
/** A frame's head: its length. */
export const FRAME_HEAD_BYTES = 4;

export interface RequestFrame {
  readonly i: number;
  /** A batch of syncs. */
  readonly b?: unknown;
  /** A task's creation. */
  readonly t?: unknown;
}

export interface AnswerFrame {
  readonly i: number;
  readonly s: number;
  readonly b: unknown;
}

/** One frame: its length, then `json` (already serialised). */
export function encodeFrame(json: string): Buffer {
  const bytes = Buffer.byteLength(json);
  const frame = Buffer.allocUnsafe(FRAME_HEAD_BYTES + bytes);
  frame.writeUInt32BE(bytes, 0);
  frame.write(json, FRAME_HEAD_BYTES);
  return frame;
}

/**
 * Cuts a byte stream into frames. A frame longer than MAX_FRAME_BYTES is refused as soon as its
 * head is read (ERR_MESSAGE_TOO_LARGE), so what is held never exceeds one frame and one read.
 */
export class FrameReader {
  /** Bytes read and not yet cut into frames, in order (joined once a whole frame is there). */
  private parts: Buffer[] = [];
  private held = 0;

  /** `maxBytes`: a frame's JSON at most (the seed channel's requests are far smaller). */
  constructor(private readonly maxBytes = MAX_FRAME_BYTES) {}

  /** The whole frames' JSON texts the stream holds once `chunk` is added. */
  push(chunk: Buffer): string[] {
    this.parts.push(chunk);
    this.held += chunk.length;
    const out: string[] = [];
    while (this.held >= FRAME_HEAD_BYTES) {
      if (this.parts[0]!.length < FRAME_HEAD_BYTES) this.parts = [Buffer.concat(this.parts, this.held)];
      const n = this.parts[0]!.readUInt32BE(0);
      if (n > this.maxBytes) throw new PollenError('ERR_MESSAGE_TOO_LARGE', `channel frame of ${n} bytes (at most ${this.maxBytes})`);
      if (this.held < FRAME_HEAD_BYTES + n) break;
      const buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.held);
      out.push(buf.toString('utf8', FRAME_HEAD_BYTES, FRAME_HEAD_BYTES + n));
      const rest = buf.subarray(FRAME_HEAD_BYTES + n);
      this.parts = rest.length > 0 ? [rest] : [];
      this.held = rest.length;
    }
    return out;
  }
}
