// Serves pieces of complete and partial blobs to other peers over the wire: a TCP listener whose
// sockets must complete TLS with the cluster key and the wire handshake within the admission rules
// (src/p2p/wire-admission.ts: deadline, caps on sockets in handshake, per address, bans), a cap on
// ready connections, upload slots (at most `uploadSlots` ready connections unchoked at once, the
// rest wait their turn), and a per-host token bucket that caps upload bandwidth. A request for a
// piece we do not hold, or outside the blob, is a protocol violation: closed and banned.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import { splitHostPort } from '../../src/config.ts';
import { pieceRange } from '../../src/p2p/metainfo.ts';
import { TokenBucket } from '../../src/p2p/token-bucket.ts';
import { WireAdmission } from '../../src/p2p/wire-admission.ts';
import type { AddressBans } from '../../src/p2p/wire-bans.ts';
import { WireConnection } from '../../src/p2p/wire-connection.ts';
import { secureIncoming, whenSecure } from '../../src/p2p/wire-tls.ts';
import type { LocalPieces } from './local-pieces.ts';

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
  private readonly bans: AddressBans;
  private readonly admission: WireAdmission;
  private readyCount = 0;
  private server: Server | undefined;
  private readonly connections = new Set<WireConnection>();
  private readonly unchoked = new Set<WireConnection>();
  private readonly waiting: WireConnection[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly onHave = (digest: Digest, index: number): void => {
    for (const c of this.connections) if (!c.isClosed && c.digestIfKnown === digest) c.have(index);
  };
  uploadedBytes = 0;
  private port = 0;

  constructor(deps: { pieces: LocalPieces; logger: Logger; clock: Clock; bans: AddressBans }, options: UploaderOptions) {
    this.pieces = deps.pieces;
    this.bans = deps.bans;
    this.admission = new WireAdmission({ clock: deps.clock, bans: deps.bans });
    this.logger = deps.logger.child({ component: 'uploader' });
    this.options = options;
    this.bucket = new TokenBucket({ clock: deps.clock }, { bytesPerSecond: options.uploadBytesPerSecond, burstBytes: Math.max(options.uploadBytesPerSecond / 4, 1 << 20) });
  }

  get listenPort(): number {
    return this.port;
  }

  async start(): Promise<void> {
    const { host, port } = splitHostPort(this.options.listen);
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    server.on('error', (err) => this.logger.warn({ err: err.message }, 'wire listener error'));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    this.pieces.on('have', this.onHave);
    this.logger.info({ host, port: this.port }, 'wire listening');
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.pieces.off('have', this.onHave);
    this.bucket.close();
    this.admission.close();
    for (const c of this.connections) c.destroy('shutting down');
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  get handshaking(): number {
    return this.admission.handshaking;
  }

  private accept(socket: Socket): void {
    socket.on('error', () => {});
    if (this.admission.admit(socket) !== 'admitted') return void socket.destroy();
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const secured = secureIncoming(socket, this.options.secret);
    secured.on('error', () => socket.destroy());
    // The wire starts only once the dialler proved the key: nothing of ours is parsed or sent before.
    whenSecure(secured, () => this.startWire(socket, secured));
  }

  private startWire(socket: Socket, secured: Socket): void {
    const conn = WireConnection.incoming(secured, { peerId: this.options.peerId, bans: this.bans }, (d) => this.pieces.knows(d));
    this.connections.add(conn);
    conn.on('close', (reason) => {
      this.connections.delete(conn);
      this.logger.debug({ remote: conn.remoteAddress, reason }, 'wire connection closed');
      if (this.unchoked.delete(conn)) this.unchokeNext();
      const w = this.waiting.indexOf(conn);
      if (w >= 0) this.waiting.splice(w, 1);
    });
    conn.on('ready', () => {
      this.admission.settled(socket);
      if (this.readyCount >= this.options.maxConnections) return conn.destroy('too many connections');
      this.readyCount++;
      conn.once('close', () => this.readyCount--);
      const source = this.pieces.source(conn.digest);
      if (!source) return conn.destroy('blob gone');
      conn.sendBitfield(source.bitfield());
      if (this.unchoked.size < this.options.uploadSlots) {
        this.unchoked.add(conn);
        conn.unchoke();
      } else {
        this.waiting.push(conn);
      }
    });
    conn.on('request', (index, offset, length, respond) => void this.serve(conn, index, offset, length, respond));
  }

  private unchokeNext(): void {
    while (this.unchoked.size < this.options.uploadSlots) {
      const next = this.waiting.shift();
      if (!next) return;
      if (next.isClosed) continue;
      this.unchoked.add(next);
      next.unchoke();
    }
  }

  private async serve(conn: WireConnection, index: number, offset: number, length: number, respond: (err: Error | null, data?: Uint8Array) => void): Promise<void> {
    const source = this.pieces.source(conn.digest);
    if (!source || !Number.isInteger(index) || index < 0 || index >= source.pieceCount || !source.has(index)) {
      return conn.violate(`request for piece ${index} we do not hold`);
    }
    const piece = pieceRange(source.size, source.pieceSize, index);
    if (offset < 0 || offset + length > piece.length) return conn.violate(`request outside piece ${index}`);
    try {
      await this.bucket.take(length);
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
