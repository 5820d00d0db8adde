// The one adapter over `bittorrent-protocol` (BEP 3 peer wire). A connection is keyed by a blob
// digest (info hash = the first 20 bytes of its sha256). Cluster membership is proven below this
// class, by the transport (src/p2p/wire-tls.ts: TLS 1.3 with the cluster's pre-shared key, the
// dialler proving the key first); what runs here is the BEP 3 handshake and a BEP 10 extended
// handshake in which the dialler names the digest and the listener, if it serves it, answers with
// a `pollen_accept` message. Only then is the connection `ready`. The library's quirks are handled
// here once: it buffers any announced message length (WireGuard caps it), it has no cap on
// incoming requests (we drop a peer that exceeds ours), and it answers nothing while choking.
// Framing and protocol violations close the connection and ban the remote address (wire-bans.ts).
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
export const MAX_INCOMING_REQUESTS = 64;
/** Buffers of incoming whole-block piece messages, shared by every connection of the process (16 MiB kept at most). */
const blockPool = new BlockPool({ frameBytes: 4 + MAX_MESSAGE_BYTES, maxFree: 64 });
/** Buffers of outgoing blocks: taken by the uploader's reads, back once the socket has the bytes. */
const uploadPool = new BlockPool({ frameBytes: BLOCK_BYTES, maxFree: 64 });

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
 * A buffer to read a block into before answering a request with it: a whole block comes from a pool
 * and returns to it once written to the socket, so answer with this buffer itself (not a copy) or
 * not at all.
 */
export function uploadBuffer(length: number): Buffer {
  return length === BLOCK_BYTES ? uploadPool.acquire() : Buffer.allocUnsafe(length);
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
    socket.setTimeout(IDLE_TIMEOUT_MS, () => this.destroy('idle timeout'));
    this.receiveChunk = (chunk, transient) => {
      if (this.closed) return;
      const frames = guard.push(chunk, transient);
      if (typeof frames === 'string') return this.violate(frames);
      try {
        for (const frame of frames) this.wire.write(frame);
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
    this.wire.on('choke', (() => this.isReady && this.emit('choke')) as never);
    this.wire.on('request', ((index: number, offset: number, length: number, respond: (err: Error | null, data?: Uint8Array) => void) => {
      if (!this.isReady) return this.violate('request before the handshake');
      if (this.wire.peerRequests.length > MAX_INCOMING_REQUESTS) return this.violate('too many outstanding requests');
      if (length <= 0 || length > BLOCK_BYTES) return this.violate(`request of ${length} bytes`);
      this.emit('request', index, offset, length, respond);
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

  request(index: number, offset: number, length: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new PollenError('ERR_PEER_PROTOCOL', 'wire connection closed'));
      this.wire.request(index, offset, length, (err, buf) => {
        if (err || !buf) reject(new PollenError('ERR_PEER_PROTOCOL', `request ${index}/${offset} failed: ${err?.message ?? 'no data'}`));
        else if (buf.length !== length) reject(new PollenError('ERR_PEER_PROTOCOL', `block ${index}/${offset} has ${buf.length} bytes, asked ${length}`));
        else resolve(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
      });
    });
  }

  cancel(index: number, offset: number, length: number): void {
    if (!this.closed) this.wire.cancel(index, offset, length);
  }

  sendBitfield(bytes: Uint8Array): void {
    if (!this.closed) this.wire.bitfield(bytes);
  }

  have(index: number): void {
    if (!this.closed && this.isReady) this.wire.have(index);
  }

  choke(): void {
    if (!this.closed) this.wire.choke();
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

/** Registers `pollen_accept` in the extended handshake's `m`, so either side may send it. */
function acceptExtension(): new (wire: Wire) => object {
  class PollenAccept {}
  (PollenAccept.prototype as unknown as { name: string }).name = ACCEPT_EXT;
  return PollenAccept;
}
