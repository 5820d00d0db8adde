// The messages that move blocks (request, piece, cancel) and the buffers they travel in. These
// three are framed here and parsed by WireConnection, not by bittorrent-protocol: a block went
// through the library's stream (a queue and two microtasks per frame), its parser and its request
// list, and left as two writes (a 13-byte header, then the block: two TLS records, two packets).
// Here a piece is answered in one write from a buffer read with room for its header, and a
// received piece resolves its request at once. BlockExchange keeps one connection's books of them:
// the blocks we asked for and the remote side's requests, each until answered.
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
/** Requests a choked child may still send (see BlockExchange.receive) before it is a flood. */
export const MAX_REQUESTS_WHILE_CHOKED = 2 * MAX_INCOMING_REQUESTS;
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
 * What dialled wire sockets and the seed channel (peer/p2p/kept-channels.ts) read into (`onread`),
 * shared by all of them: each read is framed, and copied
 * out where kept, before the next read of any socket can happen. A fresh buffer per read (Node's
 * default) made V8 run a full mark-compact every ~150 ms of a download, for the memory it counts
 * as external: about a third of a downloading peer's CPU (--trace-gc, bench:peer-cpu).
 */
export const READ_BUFFER = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * A block of BLOCK_BYTES from the same pool, to copy bytes read elsewhere into (the seed channel's
 * piece bytes); give it back with releaseBlock, as a received block.
 */
export function acquireBlock(): Buffer {
  return blockPool.acquire().subarray(0, BLOCK_BYTES);
}

/** Blocks lent (received, or acquireBlock) and not given back yet: what a test of their owners' bookkeeping reads. */
export function lentBlocks(): number {
  return blockPool.lentCount;
}

/** Gives a block that `request` resolved with (or acquireBlock lent) back for reuse; call once, when nothing uses it any more. */
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

/** A block asked of the remote side, not answered yet. */
interface AskedBlock {
  readonly length: number;
  readonly resolve: (block: Buffer) => void;
  readonly reject: (err: Error) => void;
}

/**
 * Cancelled blocks remembered until they come: a connection has at most its window in flight (64
 * blocks), so a parent that honoured a cancel leaves an entry that the bound ages out.
 */
const MAX_CANCELLED_KEPT = 256;

/** What a BlockExchange needs of its connection. */
export interface BlockPort {
  /** Queues a whole frame for the socket. */
  send(chunk: Uint8Array): void;
  /** The remote side asks a block; `respond` once with it (or an error: nothing is sent). */
  request(index: number, offset: number, length: number, respond: (err: Error | null, data?: Uint8Array) => void): void;
  /**
   * Tells the remote side a request of its will not be answered (wire-extensions.ts REJECT_EXT);
   * absent, or returning false, when the remote side does not read rejects: its requests are then
   * dropped silently, as BEP 3 has it.
   */
  reject?(index: number, offset: number, length: number): boolean;
  closed(): boolean;
  /**
   * A block came that no request of ours waits for: `cancelled` after the remote side had sent it
   * (a parent writes a block into its socket as soon as it has read it, so a cancel rarely
   * overtakes it), or not: never asked, or asked before a choke or of another length. Dropped, but
   * its bytes crossed the link.
   */
  discarded?(index: number, bytes: number, cancelled: boolean): void;
}

/**
 * One connection's block messages: our requests not answered yet (by block), resolved by the piece
 * that answers them or failed (cancel, choke, close); and the remote side's, each answered once
 * unless it cancels it or we choke it first (BEP 3).
 */
export class BlockExchange {
  private readonly port: BlockPort;
  private readonly asked = new Map<string, AskedBlock>();
  /** The remote side's requests not answered yet, by block (each its own record, a token). */
  private readonly served = new Map<string, { index: number; offset: number; length: number }>();
  /** The remote side's requests that reached us while we choked it, since we last choked it. */
  private askedWhileChoking = 0;
  /**
   * Blocks we cancelled whose answers may still come, by block: how many (the newest
   * MAX_CANCELLED_KEPT blocks). Kept when the block is asked again: the cancelled answer, if the
   * remote side had sent it, then answers the new request, and the new request's answer is the
   * one that comes unasked (a bed run at N = 16 had whole pieces asked again of a parent after a
   * cancel, each block twice).
   */
  private readonly cancelled = new Map<string, number>();

  constructor(port: BlockPort) {
    this.port = port;
  }

  /** Sends a request for a block; false when that block is asked already. */
  ask(index: number, offset: number, length: number, resolve: (block: Buffer) => void, reject: (err: Error) => void): boolean {
    const key = blockKey(index, offset);
    if (this.asked.has(key)) return false;
    this.asked.set(key, { length, resolve, reject });
    this.port.send(blockMessage(MSG_REQUEST, index, offset, length));
    return true;
  }

  /** Withdraws our request for a block (its promise fails) and tells the remote side. */
  cancel(index: number, offset: number, length: number): void {
    const key = blockKey(index, offset);
    const asked = this.asked.get(key);
    if (!asked) return;
    this.asked.delete(key);
    const copies = (this.cancelled.get(key) ?? 0) + 1;
    this.cancelled.delete(key);
    this.cancelled.set(key, copies);
    if (this.cancelled.size > MAX_CANCELLED_KEPT) this.cancelled.delete(this.cancelled.keys().next().value!);
    asked.reject(new Error('request was cancelled'));
    this.port.send(blockMessage(MSG_CANCEL, index, offset, length));
  }

  /** Whether a cancelled answer of `key` was still to come (it has now). */
  private takeCancelled(key: string): boolean {
    const copies = this.cancelled.get(key);
    if (copies === undefined) return false;
    if (copies > 1) this.cancelled.set(key, copies - 1);
    else this.cancelled.delete(key);
    return true;
  }

  /** Fails every request of ours not answered yet (a choke, a close). */
  failAsked(why: string): void {
    if (this.asked.size === 0) return;
    const all = [...this.asked.values()];
    this.asked.clear();
    for (const a of all) a.reject(new Error(why));
  }

  /** Drops the remote side's requests not answered yet (we choke it, or close). */
  forgetServed(): void {
    this.served.clear();
    this.askedWhileChoking = 0;
  }

  /** We choke the remote side: its requests not answered yet are dropped, each rejected where it reads rejects. */
  rejectServed(): void {
    const dropped = [...this.served.values()];
    this.forgetServed();
    for (const r of dropped) if (!this.port.reject?.(r.index, r.offset, r.length)) break;
  }

  /**
   * The remote side will not answer our request for this block (its REJECT_EXT): the request fails.
   * A reject of a block not asked (cancelled meanwhile), or of another length, changes nothing.
   */
  rejected(index: number, offset: number, length: number): void {
    const key = blockKey(index, offset);
    const asked = this.asked.get(key);
    if (!asked || asked.length !== length) return;
    this.asked.delete(key);
    asked.reject(new Error('request was rejected'));
  }

  /** A request, piece or cancel frame (length prefix included); returns a protocol violation, if it is one. */
  receive(frame: Buffer, amChoking: boolean): string | undefined {
    const id = frame[4]!;
    if (id === MSG_PIECE) {
      if (frame.length < PIECE_HEAD_BYTES) return 'short piece message';
      const key = blockKey(frame.readUInt32BE(5), frame.readUInt32BE(9));
      const asked = this.asked.get(key);
      const block = frame.subarray(PIECE_HEAD_BYTES);
      // Not asked (cancelled, or choked meanwhile) or not the length asked: dropped, as BEP 3 has it.
      if (!asked || asked.length !== block.length) {
        this.port.discarded?.(frame.readUInt32BE(5), block.length, !asked && this.takeCancelled(key));
        releaseBlock(frame);
        return undefined;
      }
      this.asked.delete(key);
      asked.resolve(block);
      return undefined;
    }
    if (frame.length !== BLOCK_MESSAGE_BYTES) return `message ${id} of ${frame.length - 4} bytes`;
    const index = frame.readUInt32BE(5);
    const offset = frame.readUInt32BE(9);
    const length = frame.readUInt32BE(13);
    const key = blockKey(index, offset);
    if (id === MSG_CANCEL) {
      this.served.delete(key);
      return undefined;
    }
    // One we already have is ignored. A request while we choke it is rejected where the remote side
    // reads rejects, else ignored (BEP 3; the library did the same).
    if (this.served.has(key)) return undefined;
    if (length <= 0 || length > BLOCK_BYTES) return `request of ${length} bytes`;
    if (amChoking) {
      // A child asks at most its window (our bound on its outstanding requests) before it learns of
      // the choke, and again what rejects and blocks that came ahead of the choke freed: twice the
      // bound is generous, and more a flood that would only grow our queue of rejects.
      if (++this.askedWhileChoking > MAX_REQUESTS_WHILE_CHOKED) return 'too many requests while choked';
      this.port.reject?.(index, offset, length);
      return undefined;
    }
    if (this.served.size >= MAX_INCOMING_REQUESTS) return 'too many outstanding requests';
    const token = { index, offset, length };
    this.served.set(key, token);
    this.port.request(index, offset, length, (err, data) => {
      if (this.port.closed() || this.served.get(key) !== token || err || !data) {
        if (data) releaseUpload(data);
        return;
      }
      this.served.delete(key);
      this.port.send(pieceMessage(index, offset, data));
    });
    return undefined;
  }
}
