// The messages that move blocks (request, piece, cancel) and the buffers they travel in. These
// three are framed here and parsed by WireConnection, not by bittorrent-protocol: a block went
// through the library's stream (a queue and two microtasks per frame), its parser and its request
// list, and left as two writes (a 13-byte header, then the block: two TLS records, two packets).
// Here a piece is answered in one write from a buffer read with room for its header, and a
// received piece resolves its request at once.
import { BLOCK_BYTES } from './metainfo.ts';
import { BlockPool } from './block-pool.ts';
import { WireGuard } from './wire-guard.ts';

/** Largest frame: a piece message carrying one block (id 1 + index 4 + begin 4). */
export const MAX_MESSAGE_BYTES = BLOCK_BYTES + 9;
/** A piece message before its block: length 4, id 1, index 4, begin 4. */
export const PIECE_HEAD_BYTES = 13;
/** A request or cancel message: length 4, id 1, index 4, begin 4, length 4. */
export const BLOCK_MESSAGE_BYTES = 17;
export const MSG_REQUEST = 6;
export const MSG_PIECE = 7;
export const MSG_CANCEL = 8;
export const MAX_INCOMING_REQUESTS = 64;
/** Buffers of incoming whole-block piece messages, shared by every connection of the process (16 MiB kept at most). */
const blockPool = new BlockPool({ frameBytes: 4 + MAX_MESSAGE_BYTES, maxFree: 64 });
/**
 * Buffers of outgoing piece messages: the uploader reads a block in after the header's room, and
 * the buffer comes back once the socket has the bytes.
 */
const uploadPool = new BlockPool({ frameBytes: PIECE_HEAD_BYTES + BLOCK_BYTES, maxFree: 64 });
/** Buffers of partial blocks (a blob's last one), also read in after room for the header. */
const withHeadRoom = new WeakSet<ArrayBuffer>();

/**
 * What dialled sockets read into (`onread`), shared by all of them: each read is framed, and copied
 * out where kept, before the next read of any socket can happen. A fresh buffer per read (Node's
 * default) made V8 run a full mark-compact every ~150 ms of a download, for the memory it counts
 * as external: about a third of a downloading peer's CPU (--trace-gc, bench:peer-cpu).
 */
export const READ_BUFFER = Buffer.allocUnsafeSlow(64 * 1024);

/** Gives a block that `request` resolved with back for reuse; call once, when nothing uses it any more. */
export function releaseBlock(block: Uint8Array): void {
  blockPool.release(block);
}

/**
 * A buffer to read a block into before answering a request with it. It is a view after room for the
 * piece message's header, so the answer goes out in one write; a whole block comes from a pool and
 * returns to it once written to the socket. Answer with this buffer itself (a copy costs a copy).
 */
export function uploadBuffer(length: number): Buffer {
  if (length === BLOCK_BYTES) return uploadPool.acquire().subarray(PIECE_HEAD_BYTES);
  const frame = Buffer.allocUnsafeSlow(PIECE_HEAD_BYTES + length);
  withHeadRoom.add(frame.buffer as ArrayBuffer);
  return frame.subarray(PIECE_HEAD_BYTES);
}

/** The framing guard of one connection's incoming bytes (whole-block pieces land in pooled buffers). */
export function newWireGuard(): WireGuard {
  return new WireGuard({ maxMessageBytes: MAX_MESSAGE_BYTES, pool: blockPool });
}

/** Gives back an outgoing frame once the socket has it (anything not from the pool is ignored). */
export function releaseUpload(chunk: Uint8Array): void {
  uploadPool.release(chunk);
}

export function blockKey(index: number, offset: number): string {
  return `${index}:${offset}`;
}

/** A request or cancel message. */
export function blockMessage(id: number, index: number, offset: number, length: number): Buffer {
  const m = Buffer.allocUnsafe(BLOCK_MESSAGE_BYTES);
  m.writeUInt32BE(BLOCK_MESSAGE_BYTES - 4, 0);
  m[4] = id;
  m.writeUInt32BE(index, 5);
  m.writeUInt32BE(offset, 9);
  m.writeUInt32BE(length, 13);
  return m;
}

/** A piece message in one buffer: the header goes in the room uploadBuffer left before the block (a copy otherwise). */
export function pieceMessage(index: number, offset: number, data: Uint8Array): Buffer {
  let frame: Buffer;
  if (data.byteOffset === PIECE_HEAD_BYTES && (uploadPool.owns(data) || withHeadRoom.has(data.buffer as ArrayBuffer))) {
    frame = Buffer.from(data.buffer, 0, PIECE_HEAD_BYTES + data.length);
  } else {
    frame = Buffer.allocUnsafe(PIECE_HEAD_BYTES + data.length);
    frame.set(data, PIECE_HEAD_BYTES);
  }
  frame.writeUInt32BE(PIECE_HEAD_BYTES - 4 + data.length, 0);
  frame[4] = MSG_PIECE;
  frame.writeUInt32BE(index, 5);
  frame.writeUInt32BE(offset, 9);
  return frame;
}
