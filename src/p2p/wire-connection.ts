// The one adapter over `bittorrent-protocol` (BEP 3 peer wire). A connection is keyed by a blob
// digest (info hash = the first 20 bytes of its sha256). Cluster membership is proven below this
// class, by the transport (src/p2p/wire-tls.ts: TLS 1.3 with the cluster's pre-shared key, the
// dialler proving the key first); what runs here is the BEP 3 handshake and a BEP 10 extended
// handshake in which the dialler names the digest and the listener, if it serves it, answers with
// a `pollen_accept` message. Only then is the connection `ready`. The library's quirks are handled
// here once: it buffers any announced message length (WireGuard caps it), it has no cap on
// incoming requests (we drop a peer that exceeds ours), and it answers nothing while choking.
// Framing and protocol violations close the connection and ban the remote address (wire-bans.ts).
// The three messages that move blocks (request, piece, cancel) are framed and parsed here, not by
// the library: a block arrives once per 256 KiB and went through the library's stream (a queue and
// two microtasks per frame), its parser and its request list, and left as two writes (a 13-byte
// header, then the block: two TLS records, two packets). Here a piece is answered in one write from
// a buffer read with room for its header, and a received piece resolves its request at once. Every
// other message (handshakes, bitfield, have, choke, interest, keep-alive) is still the library's.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import Wire from 'bittorrent-protocol';
import { digestHex, isDigestLike, type Digest } from '../digest.ts';
import { PollenError } from '../errors.ts';
import { BLOCK_BYTES } from './metainfo.ts';
import type { AddressBans } from './wire-bans.ts';
import { BlockPool } from './block-pool.ts';
import { WireGuard } from './wire-guard.ts';

/** Largest frame: a piece message carrying one block (id 1 + index 4 + begin 4). */
export const MAX_MESSAGE_BYTES = BLOCK_BYTES + 9;
/** A piece message before its block: length 4, id 1, index 4, begin 4. */
const PIECE_HEAD_BYTES = 13;
/** A request or cancel message: length 4, id 1, index 4, begin 4, length 4. */
const BLOCK_MESSAGE_BYTES = 17;
const MSG_REQUEST = 6;
const MSG_PIECE = 7;
const MSG_CANCEL = 8;
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
/** From TCP accept (or dial) to `ready`: TLS, the BEP 3 and the extended handshake together. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
export const IDLE_TIMEOUT_MS = 120_000;
/** The listener's answer to the digest the dialler named: it serves it (payload: the digest). */
const ACCEPT_EXT = 'pollen_accept';

export interface WireOptions {
  /** 20 bytes. */
  readonly peerId: Buffer;
  /**
   * The socket reads through `onread` into a buffer it reuses (see READ_BUFFER and dialWire) and
   * hands each read to `receive`: no 'data' events, no fresh buffer per read.
   */
  readonly ownReads?: boolean;
  /** Where a protocol violation bans the remote address (none: the connection is only closed). */
  readonly bans?: AddressBans;
}

export function infoHashOf(digest: Digest): string {
  return digestHex(digest).slice(0, 40);
}

/** A block asked of the remote side, not answered yet. */
interface AskedBlock {
  readonly length: number;
  readonly resolve: (block: Buffer) => void;
  readonly reject: (err: Error) => void;
}

function blockKey(index: number, offset: number): string {
  return `${index}:${offset}`;
}

export interface WireConnectionEvents {
  ready: [];
  have: [index: number];
  bitfield: [];
  unchoke: [];
  choke: [];
  request: [index: number, offset: number, length: number, respond: (err: Error | null, data?: Uint8Array) => void];
  close: [reason: string];
}

export class WireConnection extends EventEmitter<WireConnectionEvents> {
  readonly outgoing: boolean;
  private readonly socket: Socket;
  private readonly wire: Wire;
  private readonly options: WireOptions;
  private readonly accept: ((digest: Digest) => boolean) | undefined;
  private infoHash: string | undefined;
  private digestValue: Digest | undefined;
  private isReady = false;
  /** Output of the library not yet handed to the socket (see send). */
  private readonly outbox: Uint8Array[] = [];
  private writing = false;
  private closed = false;
  /** Frames handed over by the guard (the first is the BEP 3 handshake). */
  private frames = 0;
  /** Our requests to the remote side not answered yet, by block. */
  private readonly asked = new Map<string, AskedBlock>();
  /** The remote side's requests not answered yet, by block (a token per request). */
  private readonly served = new Map<string, object>();
  /** Reads since the idle check last looked (see the constructor). */
  private reads = 0;
  private readonly idleTimer: NodeJS.Timeout;
  /** Why the connection was closed for breaking the protocol (and its address banned), if it was. */
  violation: string | undefined;
  private readonly handshakeTimer: NodeJS.Timeout;
  private readonly receiveChunk: (chunk: Buffer, transient: boolean) => void;
  readonly ready: Promise<void>;

  private constructor(socket: Socket, options: WireOptions, digest: Digest | undefined, accept: ((d: Digest) => boolean) | undefined) {
    super();
    this.socket = socket;
    this.options = options;
    this.outgoing = digest !== undefined;
    this.digestValue = digest;
    this.accept = accept;
    this.ready = new Promise((resolve, reject) => {
      this.once('ready', resolve);
      this.once('close', (reason) => reject(new PollenError('ERR_PEER_PROTOCOL', `wire connection closed before ready: ${reason}`, { reason })));
    });
    this.ready.catch(() => {});
    this.wire = new Wire(this.outgoing ? 'tcpOutgoing' : 'tcpIncoming');
    this.wire.use(acceptExtension());
    const guard = new WireGuard({ maxMessageBytes: MAX_MESSAGE_BYTES, pool: blockPool });
    socket.setNoDelay(true);
    // Idle: nothing received for one to two periods (a ready peer sends a keep-alive every minute).
    // Not socket.setTimeout: node re-arms that timer on every read, a few percent of a downloading
    // peer's CPU on a shaped link (perf, a 200 Mbit/s pull).
    this.idleTimer = setInterval(() => {
      if (this.reads === 0) this.destroy('idle timeout');
      this.reads = 0;
    }, IDLE_TIMEOUT_MS);
    this.idleTimer.unref();
    this.receiveChunk = (chunk, transient) => {
      if (this.closed) return;
      this.reads++;
      const frames = guard.push(chunk, transient);
      if (typeof frames === 'string') return this.violate(frames);
      try {
        for (const frame of frames) {
          if (this.frames++ > 0 && frame.length > 4 && frame[4]! >= MSG_REQUEST && frame[4]! <= MSG_CANCEL) this.onBlockMessage(frame);
          else this.wire.write(frame);
          if (this.closed) return;
        }
      } catch (err) {
        this.violate(`bad message: ${(err as Error).message}`);
      }
    };
    if (!options.ownReads) socket.on('data', (chunk: Buffer) => this.receiveChunk(chunk, false));
    socket.on('error', (err) => this.destroy(`socket error: ${err.message}`));
    socket.on('close', () => this.destroy('socket closed'));
    this.wire.on('data', ((chunk: Uint8Array) => this.send(chunk)) as never);
    this.wire.on('error', (() => this.violate('wire error')) as never);
    this.wire.on('end', (() => this.violate('protocol error')) as never);
    this.wire.on('close', (() => this.destroy('wire closed')) as never);
    this.wire.on('handshake', ((infoHash: string, _peerId: string, ext: { extended?: boolean }) => this.onHandshake(infoHash, ext)) as never);
    this.wire.on('extended', ((ext: string, payload: unknown) => this.onExtended(ext, payload)) as never);
    this.wire.on('have', ((i: number) => this.isReady && this.emit('have', i)) as never);
    this.wire.on('bitfield', (() => this.isReady && this.emit('bitfield')) as never);
    this.wire.on('unchoke', (() => this.isReady && this.emit('unchoke')) as never);
    this.wire.on('choke', (() => {
      // BEP 3: a choke discards the requests the remote side had not answered.
      this.failAsked('peer is choking');
      if (this.isReady) this.emit('choke');
    }) as never);
    this.handshakeTimer = setTimeout(() => this.destroy('handshake timeout'), HANDSHAKE_TIMEOUT_MS);
    this.handshakeTimer.unref();
    if (digest) {
      this.infoHash = infoHashOf(digest);
      this.wire.extendedHandshake = { pollen_digest: digest };
      this.wire.handshake(this.infoHash, options.peerId);
    }
  }

  /** Dialling side: asks for `digest` over `socket` (already secured by the transport). */
  static outgoing(socket: Socket, options: WireOptions, digest: Digest): WireConnection {
    return new WireConnection(socket, options, digest, undefined);
  }

  /** Listening side: `accept` says whether this peer serves the digest the other side asks for. */
  static incoming(socket: Socket, options: WireOptions, accept: (digest: Digest) => boolean): WireConnection {
    return new WireConnection(socket, options, undefined, accept);
  }

  /** One read of a socket dialled with `ownReads`; `chunk` is only valid during the call. */
  receive(chunk: Buffer): void {
    this.receiveChunk(chunk, true);
  }

  get digest(): Digest {
    if (!this.digestValue) throw new PollenError('ERR_INTERNAL', 'wire connection has no digest yet');
    return this.digestValue;
  }

  /** The digest once known (always for outgoing; after the extended handshake for incoming). */
  get digestIfKnown(): Digest | undefined {
    return this.digestValue;
  }

  get remoteAddress(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get peerChoking(): boolean {
    return this.wire.peerChoking;
  }

  peerHas(index: number): boolean {
    return this.isReady && this.wire.peerPieces.get(index);
  }

  /** Asks for one block; resolves with it (a view into a pooled frame: see releaseBlock). */
  request(index: number, offset: number, length: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => reject(new PollenError('ERR_PEER_PROTOCOL', `request ${index}/${offset} failed: ${why}`));
      if (this.closed) return fail('wire connection closed');
      if (!this.isReady) return fail('wire connection not ready');
      if (this.wire.peerChoking) return fail('peer is choking');
      const key = blockKey(index, offset);
      if (this.asked.has(key)) return fail('already asked');
      this.asked.set(key, { length, resolve, reject: (err) => fail(err.message) });
      this.send(blockMessage(MSG_REQUEST, index, offset, length));
    });
  }

  cancel(index: number, offset: number, length: number): void {
    if (this.closed) return;
    const key = blockKey(index, offset);
    const asked = this.asked.get(key);
    if (!asked) return;
    this.asked.delete(key);
    asked.reject(new Error('request was cancelled'));
    this.send(blockMessage(MSG_CANCEL, index, offset, length));
  }

  sendBitfield(bytes: Uint8Array): void {
    if (!this.closed) this.wire.bitfield(bytes);
  }

  have(index: number): void {
    if (!this.closed && this.isReady) this.wire.have(index);
  }

  choke(): void {
    if (this.closed) return;
    // BEP 3: choking discards the requests we had not answered (answers still on disk are dropped).
    this.served.clear();
    this.wire.choke();
  }

  unchoke(): void {
    if (!this.closed) this.wire.unchoke();
  }

  interested(): void {
    if (!this.closed) this.wire.interested();
  }

  destroy(reason = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.handshakeTimer);
    clearInterval(this.idleTimer);
    this.served.clear();
    this.failAsked('wire was closed');
    this.socket.destroy();
    this.wire.destroy();
    for (const chunk of this.outbox.splice(0)) uploadPool.release(chunk);
    this.emit('close', reason);
  }

  /** Closes the connection for breaking the protocol and bans the remote address. */
  violate(reason: string): void {
    if (this.closed) return;
    this.violation = reason;
    this.options.bans?.ban(this.socket.remoteAddress);
    this.destroy(`protocol violation: ${reason}`);
  }

  /**
   * Writes the library's output one chunk at a time, each once the previous one is written. Queued
   * writes would reach the socket as one writev, which TLS first copies into a single fresh buffer
   * (up to MAX_INCOMING_REQUESTS blocks: 16 MiB of page faults); one at a time, a block is
   * encrypted straight from its pooled buffer, which goes back to the pool once written.
   */
  private send(chunk: Uint8Array): void {
    if (this.closed) return uploadPool.release(chunk);
    this.outbox.push(chunk);
    if (!this.writing) this.flush();
  }

  private flush(): void {
    const chunk = this.outbox.shift();
    if (chunk === undefined || this.closed) {
      this.writing = false;
      return;
    }
    this.writing = true;
    this.socket.write(chunk, () => {
      uploadPool.release(chunk);
      this.flush();
    });
  }

  /** A request, piece or cancel message (a whole frame, length prefix included). */
  private onBlockMessage(frame: Buffer): void {
    const id = frame[4]!;
    if (!this.isReady) return this.violate(`message ${id} before the handshake`);
    if (id === MSG_PIECE) {
      if (frame.length < PIECE_HEAD_BYTES) return this.violate('short piece message');
      const key = blockKey(frame.readUInt32BE(5), frame.readUInt32BE(9));
      const asked = this.asked.get(key);
      const block = frame.subarray(PIECE_HEAD_BYTES);
      // Not asked (cancelled, or choked meanwhile) or not the length asked: dropped, as BEP 3 has it.
      if (!asked || asked.length !== block.length) return releaseBlock(frame);
      this.asked.delete(key);
      return asked.resolve(block);
    }
    if (frame.length !== BLOCK_MESSAGE_BYTES) return this.violate(`message ${id} of ${frame.length - 4} bytes`);
    const index = frame.readUInt32BE(5);
    const offset = frame.readUInt32BE(9);
    const length = frame.readUInt32BE(13);
    const key = blockKey(index, offset);
    if (id === MSG_CANCEL) {
      this.served.delete(key);
      return;
    }
    // A request while we choke it is ignored (BEP 3; the library did the same); one we already
    // have is ignored too.
    if (this.wire.amChoking || this.served.has(key)) return;
    if (length <= 0 || length > BLOCK_BYTES) return this.violate(`request of ${length} bytes`);
    if (this.served.size >= MAX_INCOMING_REQUESTS) return this.violate('too many outstanding requests');
    const token = {};
    this.served.set(key, token);
    this.emit('request', index, offset, length, (err, data) => {
      if (this.closed || this.served.get(key) !== token || err || !data) {
        if (data) uploadPool.release(data);
        return;
      }
      this.served.delete(key);
      this.sendPiece(index, offset, data);
    });
  }

  /** One write: the header goes in the room uploadBuffer left before the block (a copy otherwise). */
  private sendPiece(index: number, offset: number, data: Uint8Array): void {
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
    this.send(frame);
  }

  private failAsked(why: string): void {
    if (this.asked.size === 0) return;
    const all = [...this.asked.values()];
    this.asked.clear();
    for (const a of all) a.reject(new Error(why));
  }

  private onHandshake(infoHash: string, ext: { extended?: boolean }): void {
    if (!ext.extended) return this.violate('peer does not speak the extension protocol');
    if (this.outgoing) {
      if (infoHash !== this.infoHash) this.violate('info hash mismatch');
      return;
    }
    if (this.infoHash !== undefined) return this.violate('second handshake');
    if (!/^[0-9a-f]{40}$/.test(infoHash)) return this.violate('bad info hash');
    this.infoHash = infoHash;
    this.wire.extendedHandshake = {};
    this.wire.handshake(infoHash, this.options.peerId);
  }

  private onExtended(ext: string, payload: unknown): void {
    if (this.closed) return;
    if (ext === 'handshake') return this.outgoing ? undefined : this.onDiallerHandshake(payload as Record<string, unknown>);
    if (ext !== ACCEPT_EXT || !this.outgoing || this.isReady) return;
    const named = payload instanceof Uint8Array ? Buffer.from(payload).toString('latin1') : '';
    if (named !== this.digestValue) return this.violate('accepted another digest');
    this.becomeReady();
  }

  /** Listening side: the dialler named the digest it wants; answer if this peer serves it. */
  private onDiallerHandshake(handshake: Record<string, unknown>): void {
    if (this.digestValue !== undefined) return this.violate('second extended handshake');
    if (!this.wire.peerExtendedMapping[ACCEPT_EXT]) return this.violate('peer does not speak pollen_accept');
    const raw = handshake.pollen_digest;
    const digest = raw instanceof Uint8Array ? Buffer.from(raw).toString('latin1') : '';
    if (!isDigestLike(digest) || !digest.startsWith('sha256:')) return this.violate('bad digest');
    if (infoHashOf(digest as Digest) !== this.infoHash) return this.violate('digest does not match info hash');
    if (!this.accept?.(digest as Digest)) return this.destroy('blob not served here');
    this.digestValue = digest as Digest;
    this.wire.extended(ACCEPT_EXT, Buffer.from(digest, 'latin1'));
    this.becomeReady();
  }

  private becomeReady(): void {
    this.isReady = true;
    clearTimeout(this.handshakeTimer);
    this.wire.setKeepAlive(true);
    this.emit('ready');
  }
}

/** A request or cancel message. */
function blockMessage(id: number, index: number, offset: number, length: number): Buffer {
  const m = Buffer.allocUnsafe(BLOCK_MESSAGE_BYTES);
  m.writeUInt32BE(BLOCK_MESSAGE_BYTES - 4, 0);
  m[4] = id;
  m.writeUInt32BE(index, 5);
  m.writeUInt32BE(offset, 9);
  m.writeUInt32BE(length, 13);
  return m;
}

/** Registers `pollen_accept` in the extended handshake's `m`, so either side may send it. */
function acceptExtension(): new (wire: Wire) => object {
  class PollenAccept {}
  (PollenAccept.prototype as unknown as { name: string }).name = ACCEPT_EXT;
  return PollenAccept;
}
