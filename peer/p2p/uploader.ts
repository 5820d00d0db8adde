// Serves pieces of complete and partial blobs to other peers over the wire: the wire listener
// (src/p2p/wire-listener.ts: TLS with the cluster key, admission of sockets in handshake, bans)
// hands over connections that are ready; each that says it is interested gets an upload slot (at
// most `uploadSlots` unchoked at once, the rest wait their turn) and a per-host token bucket caps
// upload bandwidth. A request for a piece we do not hold, or outside the blob, is a protocol
// violation: closed and banned.
import type { Logger } from 'pino';
import type { Clock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import { pieceRange } from '../../src/p2p/metainfo.ts';
import { TokenBucket } from '../../src/p2p/token-bucket.ts';
import type { AddressBans } from '../../src/p2p/wire-bans.ts';
import type { WireConnection } from '../../src/p2p/wire-connection.ts';
import { WireListener } from '../../src/p2p/wire-listener.ts';
import type { LocalPieces, PieceSource } from './local-pieces.ts';
import { UploadSlots } from './upload-slots.ts';

export interface UploaderOptions {
  /** HOST:PORT to listen on (port 0 for a free one). */
  readonly listen: string;
  /** 20 bytes. */
  readonly peerId: Buffer;
  /** The cluster secret: the wire is TLS with its key ('' = plain TCP, loopback only). */
  readonly secret: string;
  readonly uploadSlots: number;
  /** 0 = unlimited. */
  readonly uploadBytesPerSecond: number;
  /** Ready (authenticated) connections at once; sockets in handshake are capped by admission. */
  readonly maxConnections: number;
  /** TEST ONLY: flip a byte of every block served. */
  readonly corruptUploads?: boolean;
}

export class Uploader {
  private readonly pieces: LocalPieces;
  private readonly logger: Logger;
  private readonly options: UploaderOptions;
  private readonly bucket: TokenBucket;
  private readonly listener: WireListener;
  private readonly connections = new Set<WireConnection>();
  private readonly slots: UploadSlots<WireConnection>;
  /** Per child connection, the pieces whose proof went to it already (once each). */
  private readonly proved = new WeakMap<WireConnection, Set<number>>();
  /** A verified piece of a download: told to the children of its digest in its layout (one of a blob gone since, in another, is not). */
  private readonly onHave = (digest: Digest, index: number): void => {
    for (const c of this.connections) if (!c.isClosed && c.digestIfKnown === digest && this.pieces.knows(digest, c.pieceSize)) c.have(index);
  };
  uploadedBytes = 0;

  constructor(deps: { pieces: LocalPieces; logger: Logger; clock: Clock; bans: AddressBans }, options: UploaderOptions) {
    this.pieces = deps.pieces;
    this.logger = deps.logger.child({ component: 'uploader' });
    this.options = options;
    this.slots = new UploadSlots({ slots: options.uploadSlots });
    this.bucket = new TokenBucket({ clock: deps.clock }, { bytesPerSecond: options.uploadBytesPerSecond, burstBytes: Math.max(options.uploadBytesPerSecond / 4, 1 << 20) });
    this.listener = new WireListener(
      { clock: deps.clock, bans: deps.bans, accept: (d, pieceSize) => this.pieces.knows(d, pieceSize) },
      { listen: options.listen, peerId: options.peerId, secret: options.secret, maxConnections: options.maxConnections },
    );
    this.listener.on('ready', (conn) => this.onReady(conn));
    this.listener.on('closed', (conn, reason) => {
      if (conn.violation) this.logger.warn({ remote: conn.remoteAddress, reason: conn.violation }, 'wire protocol violation; address banned');
      else if (conn.failure) this.logger.error({ remote: conn.remoteAddress, err: conn.failure }, 'wire connection to a child closed by an error of ours');
      else this.logger.debug({ remote: conn.remoteAddress, reason }, 'wire connection closed');
    });
  }

  get listenPort(): number {
    return this.listener.port;
  }

  /** Sockets in TLS or wire handshake. */
  /** Children connected (authenticated wire connections): a gauge for the metrics. */
  get connectedChildren(): number {
    return this.connections.size;
  }

  /** Children connected for `digest` (a wire connection serves one blob). */
  childrenOf(digest: Digest): number {
    let n = 0;
    for (const c of this.connections) if (!c.isClosed && c.digestIfKnown === digest) n++;
    return n;
  }

  get handshaking(): number {
    return this.listener.handshaking;
  }

  async start(): Promise<void> {
    await this.listener.start((err) => this.logger.warn({ err: err.message }, 'wire listener error'));
    this.pieces.on('have', this.onHave);
    this.logger.info({ listen: this.options.listen, port: this.listener.port, tls: this.options.secret !== '' }, 'wire listening');
  }

  async close(): Promise<void> {
    this.pieces.off('have', this.onHave);
    this.bucket.close();
    for (const c of this.connections) c.destroy('shutting down');
    await this.listener.close();
  }

  private onReady(conn: WireConnection): void {
    const source = this.pieces.source(conn.digest, conn.pieceSize);
    if (!source) return conn.destroy('blob gone');
    this.connections.add(conn);
    conn.on('close', () => {
      this.connections.delete(conn);
      this.slots.release(conn);
    });
    conn.on('request', (index, offset, length, respond) => void this.serve(conn, index, offset, length, respond));
    conn.sendBitfield(source.bitfield());
    // A child that asked for the hash list and gets it needs no proofs on this connection. Paid for
    // from the upload budget like the blocks; when it has no room now, the child gets proofs instead.
    if (conn.hashList.wants) {
      const list = source.hashes();
      if (list && this.bucket.tryTake(list.length)) conn.hashList.send(list);
    }
    // BEP 3: a slot for a child that wants pieces; one that wants none (it holds all we announced)
    // gives its slot up to a child waiting.
    conn.on('interested', () => this.slots.interested(conn));
    conn.on('uninterested', () => this.slots.notInterested(conn));
    if (conn.peerInterested) this.slots.interested(conn);
  }

  /**
   * The piece's proof, once per child and piece, before any of its blocks (queued now, so ahead of
   * the block this request gets): the child may have asked for the piece without knowing its hash.
   */
  private sendProof(conn: WireConnection, source: PieceSource, index: number): void {
    let sent = this.proved.get(conn);
    if (!sent) this.proved.set(conn, (sent = new Set()));
    if (sent.has(index)) return;
    sent.add(index);
    const proof = source.proof(index);
    if (proof) conn.sendProof(proof);
  }

  private async serve(conn: WireConnection, index: number, offset: number, length: number, respond: (err: Error | null, data?: Uint8Array) => void): Promise<void> {
    const source = this.pieces.source(conn.digest, conn.pieceSize);
    // The blob went (evicted, or its download abandoned) after the child saw our bitfield: the child
    // did nothing wrong, so close without a ban; it learns from the supernode who else holds it.
    if (!source) return conn.destroy('blob no longer held');
    if (!Number.isInteger(index) || index < 0 || index >= source.pieceCount || !source.has(index)) {
      return conn.violate(`request for piece ${index} we do not hold`);
    }
    const piece = pieceRange(source.size, source.pieceSize, index);
    if (offset < 0 || offset + length > piece.length) return conn.violate(`request outside piece ${index}`);
    if (conn.speaksProofs && !conn.hashList.sent) this.sendProof(conn, source, index);
    try {
      await this.bucket.take(length, undefined, conn);
      const data = await source.read(piece.start + offset, length);
      if (data.length !== length) throw new Error(`short read ${data.length}/${length}`);
      this.uploadedBytes += length;
      if (this.options.corruptUploads) {
        const bad = Buffer.from(data);
        bad[0] = bad[0]! ^ 0xff;
        return respond(null, bad);
      }
      respond(null, data);
    } catch (err) {
      this.logger.debug({ err: (err as Error).message, index }, 'could not serve a block');
      conn.destroy('read failed');
    }
  }
}
