// The one adapter over `bittorrent-protocol` (BEP 3 peer wire). A connection is keyed by a blob
// digest (info hash = the first 20 bytes of its sha256). Cluster membership is proven below this
// class, by the transport (src/p2p/wire-tls.ts: TLS 1.3 with the cluster's pre-shared key, the
// dialler proving the key first); what runs here is the BEP 3 handshake and a BEP 10 extended
// handshake in which the dialler names the digest and its piece layout (`pollen_pieces`, only when
// not the size's default: metainfo.ts namedLayout) and the listener, if it serves the blob in that
// layout, answers with a `pollen_accept` that echoes both. Only then is the connection `ready`.
// Framing (WireGuard caps every length) and protocol violations close the connection and ban the
// remote address (wire-bans.ts). Requests, pieces, cancels, `pollen_proof` and `pollen_reject` are
// framed here (wire-blocks.ts, wire-extensions.ts), in order; the library parses the other
// messages and makes ours, handed over directly and not through its stream (streamx: each message
// a microtask later both ways, 5 % of a peer's CPU on the 16-host bed). All we write leaves in
// order through one outbox (wire-outbox.ts).
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import Wire from 'bittorrent-protocol';
import type { Digest } from '../digest.ts';
import { PollenError } from '../errors.ts';
import { BLOCK_BYTES } from './metainfo.ts';
import { decodeProof, type PieceProof } from './piece-proof.ts';
import { WireHashList } from './wire-hash-list.ts';
import { acceptance, ACCEPT_EXT, diallerAsks, HASHES_EXT, infoHashOf, MSG_EXTENDED, PROOF_EXT, proofMessage, REJECT_BYTES, REJECT_EXT, rejectMessage, usePollenExtensions } from './wire-extensions.ts';
import type { AddressBans } from './wire-bans.ts';
import { BlockExchange, MSG_CANCEL, MSG_REQUEST, newWireGuard } from './wire-blocks.ts';
import { wrongFixedLength } from './wire-guard.ts';
import { WireOutbox } from './wire-outbox.ts';

/** From TCP accept (or dial) to `ready`: TLS, the BEP 3 and the extended handshake together. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
export const IDLE_TIMEOUT_MS = 120_000;
export interface WireOptions {
  readonly peerId: Buffer; // 20 bytes
  /** The socket reads through `onread` into a buffer it reuses (see READ_BUFFER and dialWire) and hands each read to `receive`: no 'data' events, no fresh buffer per read. */
  readonly ownReads?: boolean;
  /** Where a protocol violation bans the remote address (none: the connection is only closed). */
  readonly bans?: AddressBans;
}

export interface WireConnectionEvents {
  ready: [];
  have: [index: number];
  bitfield: [];
  unchoke: [];
  choke: [];
  /** BEP 3: the other side wants pieces we hold (a child asking for an upload slot), or no longer does. */
  interested: [];
  uninterested: [];
  request: [index: number, offset: number, length: number, respond: (err: Error | null, data?: Uint8Array) => void];
  proof: [proof: PieceProof];
  /** The parent's list of every piece's hash (HASHES_EXT), 32 bytes each; a copy. */
  hashes: [list: Buffer];
  /** A block came that no request of ours waits for (BlockPort.discarded). */
  discarded: [index: number, bytes: number, cancelled: boolean];
  close: [reason: string];
}

export class WireConnection extends EventEmitter<WireConnectionEvents> {
  readonly outgoing: boolean;
  private readonly socket: Socket;
  private readonly wire: Wire;
  private readonly options: WireOptions;
  private readonly accept: ((digest: Digest, pieceSize: number | undefined) => boolean) | undefined;
  private infoHash: string | undefined;
  private digestValue: Digest | undefined;
  /** The piece size the dialler named (undefined: the blob size's default layout). */
  private pieceSizeValue: number | undefined;
  private isReady = false;
  private shook = false; // the library read the BEP 3 handshake
  /** What we write, in order (the library's output and our block, proof and reject messages). */
  private readonly outbox: WireOutbox;
  private closed = false;
  private frames = 0; // handed over by the guard (the first is the BEP 3 handshake)
  /** Our requests to the remote side and its requests to us, not answered yet (wire-blocks.ts). */
  private readonly blocks: BlockExchange;
  private reads = 0; // since the idle check last looked (see the constructor)
  private readonly idleTimer: NodeJS.Timeout;
  /** Why the connection was closed for breaking the protocol (and its address banned), if it was. */
  violation: string | undefined;
  /** An error one of our own listeners threw (a bug of ours, not the remote side's): closed, no ban. */
  failure: Error | undefined;
  private readonly handshakeTimer: NodeJS.Timeout;
  private readonly receiveChunk: (chunk: Buffer, transient: boolean) => void;
  /** The ids our extended handshake gives PROOF_EXT, REJECT_EXT and HASHES_EXT (what the remote side sends those under). */
  private readonly proofExtId: number;
  private readonly rejectExtId: number;
  private readonly hashesExtId: number;
  /** The hash list (wire-hash-list.ts): the listening side sends it to a dialler that asked. */
  readonly hashList: WireHashList;
  readonly ready: Promise<void>;

  private constructor(socket: Socket, options: WireOptions, digest: Digest | undefined, pieceSize: number | undefined, accept: ((d: Digest, pieceSize: number | undefined) => boolean) | undefined, wantHashes = false) {
    super();
    this.socket = socket;
    this.options = options;
    this.outgoing = digest !== undefined;
    this.digestValue = digest;
    this.pieceSizeValue = pieceSize;
    this.accept = accept;
    this.outbox = new WireOutbox(socket);
    this.ready = new Promise((resolve, reject) => {
      this.once('ready', resolve);
      // Only before ready: an error and its stack per close of a ready one was ~0.3 % of the bed's peers' CPU.
      this.once('close', (reason) => this.isReady || reject(new PollenError('ERR_PEER_PROTOCOL', `wire connection closed before ready: ${reason}`, { reason })));
    });
    this.ready.catch(() => {});
    this.wire = new Wire(this.outgoing ? 'tcpOutgoing' : 'tcpIncoming');
    this.wire._push = (data: Uint8Array) => this.outbox.send(data); // to the outbox, in order (see the top)
    const ids = usePollenExtensions(this.wire);
    this.proofExtId = ids.proof;
    this.rejectExtId = ids.reject;
    this.hashesExtId = ids.hashes;
    this.hashList = new WireHashList(this.outgoing, wantHashes, {
      send: (frame) => this.closed || this.outbox.send(frame),
      violate: (reason) => this.violate(reason),
      deliver: (list) => this.emit('hashes', list),
      ready: () => this.isReady,
      remoteId: () => this.wire.peerExtendedMapping[HASHES_EXT],
    });
    this.blocks = new BlockExchange({
      send: (chunk) => this.outbox.send(chunk),
      request: (index, offset, length, respond) => this.emit('request', index, offset, length, respond),
      reject: (index, offset, length) => this.sendReject(index, offset, length),
      closed: () => this.closed,
      discarded: (index, bytes, cancelled) => this.emit('discarded', index, bytes, cancelled),
    });
    const guard = newWireGuard();
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
          const id = this.frames++ > 0 && frame.length > 4 ? frame[4]! : -1;
          if (id >= MSG_REQUEST && id <= MSG_CANCEL) this.onBlockMessage(frame);
          else if (id === MSG_EXTENDED && frame.length > 5 && frame[5] === this.proofExtId) this.onProofMessage(frame.subarray(6));
          else if (id === MSG_EXTENDED && frame.length > 5 && frame[5] === this.rejectExtId) this.onRejectMessage(frame.subarray(6));
          else if (id === MSG_EXTENDED && frame.length > 5 && frame[5] === this.hashesExtId) this.hashList.receive(frame.subarray(6));
          else if (id >= 0 && wrongFixedLength(frame)) return this.violate(`message ${id} of ${frame.length - 4} bytes`); // the library would read on past it
          else if (id >= 0) this.wire._onMessage(frame.subarray(4));
          else {
            this.wire._write(frame, () => {}); // the handshake (whole: WireGuard) or a keep-alive
            if (!this.shook) return this.violate('bad handshake'); // the library refused it (and ended its wire)
          }
          if (this.closed) return;
        }
      } catch (err) {
        this.violate(`bad message: ${(err as Error).message}`);
      }
    };
    if (!options.ownReads) socket.on('data', (chunk: Buffer) => this.receiveChunk(chunk, false));
    socket.on('error', (err) => this.destroy(`socket error: ${err.message}`));
    socket.on('close', () => this.destroy('socket closed'));
    this.wire.on('error', (() => this.violate('wire error')) as never);
    this.wire.on('end', (() => this.violate('protocol error')) as never);
    this.wire.on('close', (() => this.destroy('wire closed')) as never);
    this.wire.on('handshake', ((infoHash: string, _peerId: string, ext: { extended?: boolean }) => this.onHandshake(infoHash, ext)) as never);
    this.wire.on('extended', ((ext: string, payload: unknown) => this.onExtended(ext, payload)) as never);
    this.wire.on('have', ((i: number) => this.isReady && this.emit('have', i)) as never);
    for (const e of ['bitfield', 'unchoke', 'interested', 'uninterested'] as const) this.wire.on(e, (() => this.isReady && this.emit(e)) as never);
    this.wire.on('choke', (() => {
      // BEP 3: a choke discards the requests the remote side had not answered; a parent that
      // speaks rejects says which (REJECT_EXT), and answers the others.
      if (!this.speaksRejects) this.blocks.failAsked('peer is choking');
      if (this.isReady) this.emit('choke');
    }) as never);
    this.handshakeTimer = setTimeout(() => this.destroy('handshake timeout'), HANDSHAKE_TIMEOUT_MS);
    this.handshakeTimer.unref();
    if (digest) {
      this.infoHash = infoHashOf(digest);
      this.wire.extendedHandshake = { pollen_digest: digest, ...(pieceSize === undefined ? {} : { pollen_pieces: pieceSize }), ...WireHashList.ask(wantHashes) };
      this.wire.handshake(this.infoHash, options.peerId);
    }
  }

  /** Dialling side: asks for `digest` in pieces of `pieceSize` over `socket` (already secured by the transport), and for the hash list if `wantHashes`. */
  static outgoing(socket: Socket, options: WireOptions, digest: Digest, pieceSize?: number, wantHashes = false): WireConnection {
    return new WireConnection(socket, options, digest, pieceSize, undefined, wantHashes);
  }

  /** Listening side: `accept` says whether this peer serves the digest the other side asks for, in the layout it names. */
  static incoming(socket: Socket, options: WireOptions, accept: (digest: Digest, pieceSize: number | undefined) => boolean): WireConnection {
    return new WireConnection(socket, options, undefined, undefined, accept);
  }

  /** One read of a socket dialled with `ownReads`; `chunk` is only valid during the call. */
  receive(chunk: Buffer): void {
    this.receiveChunk(chunk, true);
  }

  get digest(): Digest {
    if (!this.digestValue) throw new PollenError('ERR_INTERNAL', 'wire connection has no digest yet');
    return this.digestValue;
  }

  /** The piece size of the layout the dialler named (undefined: the blob size's default layout). */
  get pieceSize(): number | undefined {
    return this.pieceSizeValue;
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

  /** The remote side speaks piece proofs: as a parent it sends them, as a child it reads them. */
  get speaksProofs(): boolean {
    return this.isReady && this.wire.peerExtendedMapping[PROOF_EXT] !== undefined;
  }

  /** The remote side speaks rejects (REJECT_EXT): as a parent it sends them and a choke drops nothing by itself; as a child it reads them. */
  get speaksRejects(): boolean {
    return this.isReady && this.wire.peerExtendedMapping[REJECT_EXT] !== undefined;
  }

  /** Sends a piece's proof (to a child that reads them; queued in order with the blocks, so ahead of the piece's). */
  sendProof(proof: PieceProof): void {
    if (!this.closed && this.speaksProofs) this.outbox.send(proofMessage(this.wire.peerExtendedMapping[PROOF_EXT]!, proof));
  }

  /** Asks for one block; resolves with it (a view into a pooled frame: see releaseBlock). */
  request(index: number, offset: number, length: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => reject(new PollenError('ERR_PEER_PROTOCOL', `request ${index}/${offset} failed: ${why}`));
      if (this.closed) return fail('wire connection closed');
      if (!this.isReady) return fail('wire connection not ready');
      if (this.wire.peerChoking) return fail('peer is choking');
      if (!this.blocks.ask(index, offset, length, resolve, (err) => fail(err.message))) fail('already asked');
    });
  }

  cancel(index: number, offset: number, length: number): void {
    if (!this.closed) this.blocks.cancel(index, offset, length);
  }

  sendBitfield(bytes: Uint8Array): void {
    if (!this.closed) this.wire.bitfield(bytes);
  }

  have(index: number): void {
    if (!this.closed && this.isReady) this.wire.have(index);
  }

  choke(): void {
    if (this.closed) return;
    // BEP 3: choking discards the requests we had not answered (answers still on disk are dropped),
    // each rejected to a child that reads rejects, ahead of the choke.
    if (this.speaksRejects) this.blocks.rejectServed();
    else this.blocks.forgetServed();
    this.wire.choke();
  }

  unchoke(): void {
    if (!this.closed) this.wire.unchoke();
  }

  /** BEP 3: we want pieces the other side holds, or (false) no longer do. */
  interested(wants = true): void {
    if (!this.closed) this.wire[wants ? 'interested' : 'uninterested']();
  }

  /** Whether the other side said it is interested (and has not taken it back). */
  get peerInterested(): boolean {
    return this.wire.peerInterested;
  }

  /** Our listeners run inside the read's try/catch (a throw there is the remote side's fault): an error of theirs closes without a ban, kept as `failure`. */
  override emit<K extends keyof WireConnectionEvents>(event: K, ...args: WireConnectionEvents[K]): boolean {
    try {
      return super.emit<K>(event, ...(args as never));
    } catch (err) {
      if (this.closed) return process.emitWarning(err as Error), true; // its owner heard 'close' already
      this.failure ??= err as Error;
      this.destroy(`internal error: ${(err as Error).message}`);
      return true;
    }
  }

  destroy(reason = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.handshakeTimer);
    clearInterval(this.idleTimer);
    this.blocks.forgetServed();
    this.blocks.failAsked('wire was closed');
    this.socket.destroy();
    this.wire.destroy();
    this.outbox.close();
    this.emit('close', reason);
  }

  /** Closes the connection for breaking the protocol and bans the remote address. */
  violate(reason: string): void {
    if (this.closed) return;
    this.violation = reason;
    this.options.bans?.ban(this.socket.remoteAddress);
    this.destroy(`protocol violation: ${reason}`);
  }

  /** A request, piece or cancel message (a whole frame, length prefix included). */
  private onBlockMessage(frame: Buffer): void {
    if (!this.isReady) return this.violate(`message ${frame[4]!} before the handshake`);
    const violation = this.blocks.receive(frame, this.wire.amChoking);
    if (violation) this.violate(violation);
  }

  /** Tells a child that reads rejects that its request will not be answered; false when it does not read them. */
  private sendReject(index: number, offset: number, length: number): boolean {
    if (this.closed || this.outgoing || !this.speaksRejects) return false;
    this.outbox.send(rejectMessage(this.wire.peerExtendedMapping[REJECT_EXT]!, index, offset, length));
    return true;
  }

  /** A REJECT_EXT message's payload: only a parent sends rejects, only once ready. */
  private onRejectMessage(payload: Buffer): void {
    if (!this.outgoing || !this.isReady) return this.violate('unexpected reject');
    if (payload.length !== REJECT_BYTES) return this.violate('malformed reject');
    this.blocks.rejected(payload.readUInt32BE(0), payload.readUInt32BE(4), payload.readUInt32BE(8));
  }

  /** A PROOF_EXT message's payload. Only a parent sends proofs, only once ready; what they vouch for is the transfer's to check. */
  private onProofMessage(payload: Buffer): void {
    if (!this.outgoing || !this.isReady) return this.violate('unexpected piece proof');
    const proof = decodeProof(payload);
    if (!proof) return this.violate('malformed piece proof');
    this.emit('proof', proof);
  }

  private onHandshake(infoHash: string, ext: { extended?: boolean }): void {
    this.shook = true;
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
    if (named === this.digestValue && this.pieceSizeValue !== undefined) return this.destroy('parent does not serve the layout named');
    if (named !== acceptance(this.digestValue!, this.pieceSizeValue)) return this.violate('accepted another digest or layout');
    this.becomeReady();
  }

  /** Listening side: the dialler named the digest it wants; answer if this peer serves it. */
  private onDiallerHandshake(handshake: Record<string, unknown>): void {
    if (this.digestValue !== undefined) return this.violate('second extended handshake');
    if (!this.wire.peerExtendedMapping[ACCEPT_EXT]) return this.violate('peer does not speak pollen_accept');
    const asks = diallerAsks(handshake, this.infoHash);
    if (typeof asks === 'string') return this.violate(asks);
    const { digest, pieceSize } = asks;
    if (!this.accept?.(digest, pieceSize)) return this.destroy('blob not served here');
    this.digestValue = digest;
    this.pieceSizeValue = pieceSize;
    this.hashList.heard(handshake);
    this.wire.extended(ACCEPT_EXT, Buffer.from(acceptance(digest, pieceSize), 'latin1'));
    this.becomeReady();
  }

  private becomeReady(): void {
    this.isReady = true;
    clearTimeout(this.handshakeTimer);
    this.wire.setKeepAlive(true);
    this.hashList.readied();
    this.emit('ready');
  }
}
