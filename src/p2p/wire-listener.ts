// The listening side of the wire: a TCP listener whose sockets are admitted (wire-admission.ts:
// bans, handshake deadline, caps on sockets in handshake, per address), secured (wire-tls.ts: TLS
// with the cluster's wire key; nothing is parsed or sent before the dialler proved it), and then
// handed to a WireConnection. Only a connection that became ready (digest accepted) is announced,
// and only while fewer than `maxConnections` are; what it then gets (slots, pieces) is the
// owner's business (peer/p2p/uploader.ts). Started and closed by its owner.
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Clock } from '../clock.ts';
import { splitHostPort } from '../config.ts';
import type { Digest } from '../digest.ts';
import { DEFAULT_ADMISSION, WireAdmission, type AdmissionOptions } from './wire-admission.ts';
import type { AddressBans } from './wire-bans.ts';
import { WireConnection } from './wire-connection.ts';
import { secureIncoming, whenSecure } from './wire-tls.ts';

export interface WireListenerOptions {
  /** HOST:PORT to listen on (port 0 for a free one). */
  readonly listen: string;
  /** 20 bytes. */
  readonly peerId: Buffer;
  /** The cluster secret: TLS with its wire key ('' = plain TCP, loopback only). */
  readonly secret: string;
  /** Ready (authenticated) connections at once; sockets in handshake are capped by admission. */
  readonly maxConnections: number;
  readonly admission?: AdmissionOptions;
}

export interface WireListenerEvents {
  /** A dialler proved the key and asked for a digest `accept` approved. */
  ready: [conn: WireConnection];
  /** A connection closed (any stage after TLS); `violation` is set when it broke the protocol. */
  closed: [conn: WireConnection, reason: string];
}

export class WireListener extends EventEmitter<WireListenerEvents> {
  private readonly options: WireListenerOptions;
  private readonly bans: AddressBans;
  private readonly admission: WireAdmission;
  private readonly accept: (digest: Digest, pieceSize: number | undefined) => boolean;
  private readonly sockets = new Set<Socket>();
  private readyCount = 0;
  private server: Server | undefined;
  private boundPort = 0;

  constructor(deps: { clock: Clock; bans: AddressBans; accept: (digest: Digest, pieceSize: number | undefined) => boolean }, options: WireListenerOptions) {
    super();
    this.options = options;
    this.bans = deps.bans;
    this.accept = deps.accept;
    this.admission = new WireAdmission({ clock: deps.clock, bans: deps.bans }, options.admission ?? DEFAULT_ADMISSION);
  }

  get port(): number {
    return this.boundPort;
  }

  /** Sockets that have not completed TLS and the wire handshake yet. */
  get handshaking(): number {
    return this.admission.handshaking;
  }

  async start(onError: (err: Error) => void): Promise<void> {
    const { host, port } = splitHostPort(this.options.listen);
    const server = createServer((socket) => this.take(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    server.on('error', onError);
    this.boundPort = (server.address() as { port: number }).port;
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.admission.close();
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private take(socket: Socket): void {
    socket.on('error', () => {});
    if (!this.server || this.admission.admit(socket) !== 'admitted') return void socket.destroy();
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const secured = secureIncoming(socket, this.options.secret);
    // A failed TLS handshake (no key, another key, not TLS) closes the socket: OpenSSL has sent at most its alert.
    secured.on('error', () => socket.destroy());
    whenSecure(secured, () => this.startWire(socket, secured));
  }

  private startWire(socket: Socket, secured: Socket): void {
    const conn = WireConnection.incoming(secured, { peerId: this.options.peerId, bans: this.bans }, this.accept);
    conn.once('close', (reason) => this.emit('closed', conn, reason));
    conn.once('ready', () => {
      this.admission.settled(socket);
      if (this.readyCount >= this.options.maxConnections) return conn.destroy('too many connections');
      this.readyCount++;
      conn.once('close', () => this.readyCount--);
      this.emit('ready', conn);
    });
  }
}
