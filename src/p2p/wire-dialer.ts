// The dialling side of the wire for every transfer of one peer: the transport (TLS with the
// cluster's wire key when a secret is set, src/p2p/wire-tls.ts), this peer's id, and the one list
// of banned addresses the listener uses too, so a parent that broke the protocol is not dialled again.
// What parents send is paced by the host's download budget (`--download-rate`), when it has one.
import type { Digest } from '../digest.ts';
import { splitHostPort } from '../config.ts';
import { readPacer, type Throttle } from '../rate/throttle.ts';
import type { AddressBans } from './wire-bans.ts';
import { READ_BUFFER } from './wire-blocks.ts';
import { WireConnection } from './wire-connection.ts';
import { dialWire } from './wire-tls.ts';

export interface WireDialerOptions {
  /** 20 bytes. */
  readonly peerId: Buffer;
  /** The cluster secret ('' = plain TCP, loopback only). */
  readonly secret: string;
}

export class WireDialer {
  private readonly bans: AddressBans;
  private readonly throttle: Throttle | undefined;
  private readonly options: WireDialerOptions;

  constructor(deps: { bans: AddressBans; throttle?: Throttle }, options: WireDialerOptions) {
    this.bans = deps.bans;
    this.throttle = deps.throttle;
    this.options = options;
  }

  /**
   * A connection asking `wireAddr` (HOST:PORT) for `digest` in the layout named `pieceSize`
   * (metainfo.ts namedLayout; none: the default), and for its hash list if `wantHashes`
   * (wire-extensions.ts HASHES_EXT); undefined when that address is banned.
   */
  dial(wireAddr: string, digest: Digest, pieceSize?: number, wantHashes = false): WireConnection | undefined {
    if (this.bans.isBanned(splitHostPort(wireAddr).host)) return undefined;
    const options = { peerId: this.options.peerId, bans: this.bans };
    if (this.throttle && !this.throttle.unlimited) {
      // Paced: 'data' events, which stop at once when the socket pauses (TLS goes on handing
      // decrypted records to an onread callback after a pause, so those reads would escape the cap).
      const socket = dialWire(wireAddr, this.options.secret);
      socket.on('error', () => {});
      const pace = readPacer(socket, this.throttle)!;
      socket.on('data', (chunk: Buffer) => void pace(chunk.length));
      return WireConnection.outgoing(socket, options, digest, pieceSize, wantHashes);
    }
    // Unpaced: reads land in the process's one read buffer and go straight to the connection's framing.
    let conn: WireConnection | undefined;
    const socket = dialWire(wireAddr, this.options.secret, {
      buffer: READ_BUFFER,
      callback: (bytes, buf) => {
        conn?.receive(Buffer.from(buf.buffer, buf.byteOffset, bytes));
        return true;
      },
    });
    socket.on('error', () => {});
    conn = WireConnection.outgoing(socket, { ...options, ownReads: true }, digest, pieceSize, wantHashes);
    return conn;
  }
}
