// The one adapter over `bittorrent-protocol` (BEP 3 peer wire over TCP). A connection is keyed by
// a blob digest (info hash = the first 20 bytes of its sha256) and becomes `ready` only after both
// sides proved the cluster secret in the BEP 10 extended handshake (src/p2p/wire-auth.ts). The
// library's quirks are handled here once: it buffers any announced message length (WireGuard caps
// it), it has no cap on incoming requests (we drop a peer that exceeds ours), and it answers
// nothing while choking, so an unauthenticated peer gets nothing.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import Wire from 'bittorrent-protocol';
import { digestHex, isDigestLike, type Digest } from '../digest.ts';
import { PollenError } from '../errors.ts';
import { BLOCK_BYTES } from './metainfo.ts';
import { checkWireProof, newNonce, NONCE_BYTES, wireProof } from './wire-auth.ts';
import { BlockPool } from './block-pool.ts';
import { WireGuard } from './wire-guard.ts';

/** Largest frame: a piece message carrying one block (id 1 + index 4 + begin 4). */
export const MAX_MESSAGE_BYTES = BLOCK_BYTES + 9;
export const MAX_INCOMING_REQUESTS = 64;
/** Buffers of incoming whole-block piece messages, shared by every connection of the process (16 MiB kept at most). */
const blockPool = new BlockPool({ frameBytes: 4 + MAX_MESSAGE_BYTES, maxFree: 64 });
/** Buffers of outgoing blocks: taken by the uploader's reads, back once the socket has the bytes. */
const uploadPool = new BlockPool({ frameBytes: BLOCK_BYTES, maxFree: 64 });

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
export const HANDSHAKE_TIMEOUT_MS = 5_000;
export const IDLE_TIMEOUT_MS = 120_000;
const AUTH_EXT = 'pollen_auth';

export interface WireIdentity {
  /** 20 bytes. */
  readonly peerId: Buffer;
  /** The cluster secret ('' when none is configured: both ends must agree). */
  readonly secret: string;
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
  private readonly identity: WireIdentity;
  private readonly nonce = newNonce();
  private readonly accept: ((digest: Digest) => boolean) | undefined;
  private peerNonce: Uint8Array | undefined;
  private infoHash: string | undefined;
  private digestValue: Digest | undefined;
  private authed = false;
  private closed = false;
  private readonly handshakeTimer: NodeJS.Timeout;
  readonly ready: Promise<void>;

  private constructor(socket: Socket, identity: WireIdentity, digest: Digest | undefined, accept: ((d: Digest) => boolean) | undefined) {
    super();
    this.socket = socket;
    this.identity = identity;
    this.outgoing = digest !== undefined;
    this.digestValue = digest;
    this.accept = accept;
    this.ready = new Promise((resolve, reject) => {
      this.once('ready', resolve);
      this.once('close', (reason) => reject(new PollenError('ERR_PEER_PROTOCOL', `wire connection closed before ready: ${reason}`, { reason })));
    });
    this.ready.catch(() => {});
    this.wire = new Wire(this.outgoing ? 'tcpOutgoing' : 'tcpIncoming');
    this.wire.use(authExtension(this));
    const guard = new WireGuard({ maxMessageBytes: MAX_MESSAGE_BYTES, pool: blockPool });
    socket.setNoDelay(true);
    socket.setTimeout(IDLE_TIMEOUT_MS, () => this.destroy('idle timeout'));
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      const frames = guard.push(chunk);
      if (typeof frames === 'string') return this.destroy(frames);
      try {
        for (const frame of frames) this.wire.write(frame);
      } catch (err) {
        this.destroy(`bad message: ${(err as Error).message}`);
      }
    });
    socket.on('error', (err) => this.destroy(`socket error: ${err.message}`));
    socket.on('close', () => this.destroy('socket closed'));
    this.wire.on('data', ((chunk: Uint8Array) => {
      if (!this.closed) socket.write(chunk, () => uploadPool.release(chunk));
    }) as never);
    this.wire.on('error', (() => this.destroy('wire error')) as never);
    this.wire.on('end', (() => this.destroy('protocol error')) as never);
    this.wire.on('close', (() => this.destroy('wire closed')) as never);
    this.wire.on('handshake', ((infoHash: string, _peerId: string, ext: { extended?: boolean }) => this.onHandshake(infoHash, ext)) as never);
    this.wire.on('extended', ((ext: string, payload: unknown) => this.onExtended(ext, payload)) as never);
    this.wire.on('have', ((i: number) => this.authed && this.emit('have', i)) as never);
    this.wire.on('bitfield', (() => this.authed && this.emit('bitfield')) as never);
    this.wire.on('unchoke', (() => this.authed && this.emit('unchoke')) as never);
    this.wire.on('choke', (() => this.authed && this.emit('choke')) as never);
    this.wire.on('request', ((index: number, offset: number, length: number, respond: (err: Error | null, data?: Uint8Array) => void) => {
      if (!this.authed) return this.destroy('request before authentication');
      if (this.wire.peerRequests.length > MAX_INCOMING_REQUESTS) return this.destroy('too many outstanding requests');
      if (length <= 0 || length > BLOCK_BYTES) return this.destroy(`request of ${length} bytes`);
      this.emit('request', index, offset, length, respond);
    }) as never);
    this.handshakeTimer = setTimeout(() => this.destroy('handshake timeout'), HANDSHAKE_TIMEOUT_MS);
    this.handshakeTimer.unref();
    if (digest) {
      this.infoHash = infoHashOf(digest);
      this.wire.extendedHandshake = { pollen_nonce: this.nonce, pollen_digest: digest };
      this.wire.handshake(this.infoHash, identity.peerId);
    }
  }

  /** Dials side: asks for `digest`. */
  static outgoing(socket: Socket, identity: WireIdentity, digest: Digest): WireConnection {
    return new WireConnection(socket, identity, digest, undefined);
  }

  /** Listening side: `accept` says whether this peer serves the digest the other side asks for. */
  static incoming(socket: Socket, identity: WireIdentity, accept: (digest: Digest) => boolean): WireConnection {
    return new WireConnection(socket, identity, undefined, accept);
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
    return this.authed && this.wire.peerPieces.get(index);
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
    if (!this.closed && this.authed) this.wire.have(index);
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
    this.emit('close', reason);
  }

  private onHandshake(infoHash: string, ext: { extended?: boolean }): void {
    if (!ext.extended) return this.destroy('peer does not speak the extension protocol');
    if (this.outgoing) {
      if (infoHash !== this.infoHash) this.destroy('info hash mismatch');
      return;
    }
    if (!/^[0-9a-f]{40}$/.test(infoHash)) return this.destroy('bad info hash');
    this.infoHash = infoHash;
    this.wire.extendedHandshake = { pollen_nonce: this.nonce };
    this.wire.handshake(infoHash, this.identity.peerId);
  }

  /** Called by the auth extension with the peer's extended handshake. */
  onPeerExtendedHandshake(handshake: Record<string, unknown>): void {
    const nonce = handshake.pollen_nonce;
    if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) return this.destroy('missing nonce');
    this.peerNonce = nonce;
    if (!this.outgoing) {
      const raw = handshake.pollen_digest;
      const digest = raw instanceof Uint8Array ? Buffer.from(raw).toString('latin1') : '';
      if (!isDigestLike(digest) || !digest.startsWith('sha256:')) return this.destroy('bad digest');
      if (infoHashOf(digest as Digest) !== this.infoHash) return this.destroy('digest does not match info hash');
      if (!this.accept?.(digest as Digest)) return this.destroy('blob not served here');
      this.digestValue = digest as Digest;
    }
    this.wire.extended(AUTH_EXT, wireProof(this.identity.secret, this.infoHash!, this.nonce, nonce));
  }

  private onExtended(ext: string, payload: unknown): void {
    if (ext === 'handshake' && !this.wire.peerExtendedMapping[AUTH_EXT]) this.destroy('peer has no cluster authentication');
    if (ext !== AUTH_EXT || this.authed || this.closed) return;
    if (!this.peerNonce || !(payload instanceof Uint8Array)) return this.destroy('authentication out of order');
    if (!checkWireProof(this.identity.secret, this.infoHash!, this.peerNonce, this.nonce, payload)) return this.destroy('wrong cluster secret');
    this.authed = true;
    clearTimeout(this.handshakeTimer);
    this.wire.setKeepAlive(true);
    this.emit('ready');
  }
}

function authExtension(conn: WireConnection): new (wire: Wire) => { onExtendedHandshake(h: Record<string, unknown>): void } {
  class PollenAuth {
    onExtendedHandshake(handshake: Record<string, unknown>): void {
      conn.onPeerExtendedHandshake(handshake);
    }
  }
  (PollenAuth.prototype as unknown as { name: string }).name = AUTH_EXT;
  return PollenAuth;
}
