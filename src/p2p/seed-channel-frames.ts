// The seed channel's framing (peer/p2p/seed-channel.ts opens it, supernode/http/seed-channel.ts
// answers it): a peer's requests for seed pieces (GET /api/v1/seed/:digest/pieces/:index: the same
// checks, the same bytes, hash and signature) on one kept connection, upgraded from an HTTP request
// that carries the peer's token, as the sync channel is. Each GET cost the two ends ~0.5 ms of CPU
// beyond its bytes (node's HTTP parser, fastify's request and reply, undici's client). Here a
// request is a small frame and its answer a head, the bytes and an end. The peer puts one piece on
// the wire at a time, as one connection took one GET at a time (SEED_CONNECTIONS): two asked ahead
// held two pieces per peer at the seed's uplink and slowed a fan-out (peer/p2p/seed-channel.ts);
// the supernode answers whatever it is sent in order.
//   request frame   u32 length, then JSON {"i": id, "d": digest, "x": index}
//                   or {"i": id, "c": 1}: the peer gave that piece up (another copy came)
//   answer frames   u32 length, u8 kind, then the payload:
//                   HEAD  JSON {"i": id, "s": status, "n": length, "h": hash, "g": signature}
//                         (hash and signature when the seed has the whole piece already) or
//                         {"i": id, "s": status, "b": the route's OCI error body}
//                   DATA  bytes of the piece whose head came last, in order
//                   END   JSON {"i": id, "h": hash, "g": signature}, or {"i": id, "x": 1}: the
//                         piece was given up and cut short (fewer than `n` bytes came)
// Every request is answered with one HEAD, in the order sent; a 200 HEAD is followed by DATA and
// one END. A request given up before its answer began is answered 499 without a body.
import { PollenError } from '../errors.ts';

/** The HTTP request that opens a channel: `POST` here with `Upgrade: SEED_CHANNEL_PROTOCOL` and the peer's token. */
export const SEED_CHANNEL_PATH = '/api/v1/seed/channel';
export const SEED_CHANNEL_PROTOCOL = 'pollen-seed/1';
/** A request frame's JSON at most ({"i":...,"d":"sha256:<64 hex>","x":...} is ~100 bytes). */
export const MAX_SEED_REQUEST_BYTES = 256;
/**
 * Requests a channel may have waiting for their answers: more close it. A peer asks for the pieces
 * its seed leases name (at most maxSeedGrants a transfer), for the transfers it runs at once; its
 * client asks over HTTP rather than keep this many in flight (given-up ones included).
 */
export const MAX_SEED_QUEUED = 256;
/** The status of a request given up before its answer began (nginx's "client closed request"). */
export const GIVEN_UP_STATUS = 499;

export const ANSWER_HEAD = 1;
export const ANSWER_DATA = 2;
export const ANSWER_END = 3;
/** An answer frame's head: its payload's length and its kind. */
export const ANSWER_FRAME_HEAD_BYTES = 5;
/** A HEAD's or END's JSON at most (an OCI error body is a few hundred bytes). */
export const MAX_ANSWER_JSON_BYTES = 16 << 10;

export interface SeedAnswerHead {
  readonly i: number;
  readonly s: number;
  readonly n?: number;
  readonly h?: string;
  readonly g?: string;
  readonly b?: unknown;
  /** The blob's vouched list of piece hashes, once the seed holds it verified (PIECE_HASH_LIST_HEADER). */
  readonly l?: string;
}

export interface SeedAnswerEnd {
  readonly i: number;
  readonly h?: string;
  readonly g?: string;
  readonly x?: 1;
}

/** A HEAD or END frame of `json`. */
export function jsonAnswerFrame(kind: typeof ANSWER_HEAD | typeof ANSWER_END, json: string): Buffer {
  const bytes = Buffer.byteLength(json);
  const frame = Buffer.allocUnsafe(ANSWER_FRAME_HEAD_BYTES + bytes);
  frame.writeUInt32BE(bytes, 0);
  frame.writeUInt8(kind, 4);
  frame.write(json, ANSWER_FRAME_HEAD_BYTES);
  return frame;
}

/** The head of a DATA frame of `length` bytes (the bytes follow in a write of their own). */
export function dataFrameHead(length: number): Buffer {
  const head = Buffer.allocUnsafe(ANSWER_FRAME_HEAD_BYTES);
  head.writeUInt32BE(length, 0);
  head.writeUInt8(ANSWER_DATA, 4);
  return head;
}

export interface SeedAnswerHandlers {
  head(head: SeedAnswerHead): void;
  /** A view of the bytes read (never copied): valid as long as the read it is in (a transient read: until `data` returns). */
  data(bytes: Buffer): void;
  end(end: SeedAnswerEnd): void;
}

/**
 * Cuts the supernode's stream into answer frames. DATA is handed on as it is read, in views of
 * the reads, without waiting for a whole frame; a frame of an unknown kind, a HEAD or END over
 * MAX_ANSWER_JSON_BYTES, or JSON that is not an object with an id throws (the channel is to be closed).
 */
export class SeedAnswerReader {
  private head = Buffer.alloc(0);
  /** DATA bytes still to come of the frame being read, or the JSON frame's bytes gathered so far. */
  private dataLeft = 0;
  private json: { kind: number; need: number; parts: Buffer[]; held: number } | undefined;

  constructor(private readonly on: SeedAnswerHandlers) {}

  push(chunk: Buffer): void {
    let rest = chunk;
    while (rest.length > 0) {
      if (this.dataLeft > 0) {
        const take = Math.min(this.dataLeft, rest.length);
        this.dataLeft -= take;
        this.on.data(rest.subarray(0, take));
        rest = rest.subarray(take);
        continue;
      }
      if (this.json) {
        const j = this.json;
        const take = Math.min(j.need - j.held, rest.length);
        // Copied: a HEAD or END split across reads outlives the read it began in.
        j.parts.push(Buffer.from(rest.subarray(0, take)));
        j.held += take;
        rest = rest.subarray(take);
        if (j.held === j.need) {
          this.json = undefined;
          this.emitJson(j.kind, Buffer.concat(j.parts, j.held).toString('utf8'));
        }
        continue;
      }
      const need = ANSWER_FRAME_HEAD_BYTES - this.head.length;
      this.head = Buffer.concat([this.head, rest.subarray(0, need)]);
      rest = rest.subarray(Math.min(need, rest.length));
      if (this.head.length < ANSWER_FRAME_HEAD_BYTES) return;
      const length = this.head.readUInt32BE(0);
      const kind = this.head.readUInt8(4);
      this.head = Buffer.alloc(0);
      if (kind === ANSWER_DATA) {
        // Handed on as it is read, never held whole: bounded by the length the piece's head promised (the channel checks).
        this.dataLeft = length;
      } else if (kind === ANSWER_HEAD || kind === ANSWER_END) {
        if (length > MAX_ANSWER_JSON_BYTES) throw new PollenError('ERR_MESSAGE_TOO_LARGE', `seed channel answer of ${length} bytes (at most ${MAX_ANSWER_JSON_BYTES})`);
        if (length === 0) throw new PollenError('ERR_INVALID_REQUEST', 'empty seed channel answer');
        if (rest.length >= length) {
          // Whole in this read (the usual case): read where it is.
          const text = rest.toString('utf8', 0, length);
          rest = rest.subarray(length);
          this.emitJson(kind, text);
          continue;
        }
        this.json = { kind, need: length, parts: [], held: 0 };
      } else {
        throw new PollenError('ERR_INVALID_REQUEST', `seed channel frame of unknown kind ${kind}`);
      }
    }
  }

  private emitJson(kind: number, text: string): void {
    const msg = JSON.parse(text) as { i?: unknown; s?: unknown } | null;
    if (msg === null || typeof msg !== 'object' || !Number.isSafeInteger(msg.i)) throw new PollenError('ERR_INVALID_REQUEST', 'seed channel answer without an id');
    if (kind === ANSWER_HEAD) {
      if (!Number.isInteger(msg.s)) throw new PollenError('ERR_INVALID_REQUEST', 'seed channel head without a status');
      this.on.head(msg as SeedAnswerHead);
    } else {
      this.on.end(msg as SeedAnswerEnd);
    }
  }
}
