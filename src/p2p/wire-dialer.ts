// The dialling side of the wire for every transfer of one peer: the transport (TLS with the
// cluster's wire key when a secret is set, src/p2p/wire-tls.ts), this peer's id, and the one list
// of banned addresses the listener uses too, so a parent that broke the protocol is not dialled again.
// What parents send is paced by the host's download budget (`--download-rate`), when it has one.
import type { Digest } from '../digest.ts';
import { splitHostPort } from '../config.ts';
import { paceSocketReads, type Throttle } from '../rate/throttle.ts';
import type { AddressBans } from './wire-bans.ts';
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

  /** A connection asking `wireAddr` (HOST:PORT) for `digest`; undefined when that address is banned. */
  dial(wireAddr: string, digest: Digest): WireConnection | undefined {
    if (this.bans.isBanned(splitHostPort(wireAddr).host)) return undefined;
    const socket = dialWire(wireAddr, this.options.secret);
    socket.on('error', () => {});
    paceSocketReads(socket, this.throttle);
    return WireConnection.outgoing(socket, { peerId: this.options.peerId, bans: this.bans }, digest);
  }
}
