// Who may hold a socket of the wire listener before proving membership. A socket is "in handshake"
// from TCP accept until its connection is ready (TLS done, digest accepted); such sockets
//  - get HANDSHAKE_TIMEOUT_MS in all, then they are closed;
//  - are capped per remote address (MAX_HANDSHAKES_PER_ADDRESS: a new one beyond it is refused);
//  - are capped in all (MAX_HANDSHAKING); when the cap is reached, the oldest socket of the address
//    holding the most of them is closed to make room. So idle strangers cannot keep a member out:
//    a member's handshake takes milliseconds and holds one slot, while a stranger's sockets pile
//    up on its addresses and are the ones evicted, even while it keeps opening new ones;
//  - never come from a banned address (wire-bans.ts).
// Members' ready connections are counted separately (the listener's maxConnections) and upload
// slots (uploader.ts) are given only to ready connections.
import type { Clock } from '../clock.ts';
import { addressKey, type AddressBans } from './wire-bans.ts';
import { HANDSHAKE_TIMEOUT_MS } from './wire-connection.ts';

export const MAX_HANDSHAKING = 128;
export const MAX_HANDSHAKES_PER_ADDRESS = 16;

/** What admission needs of a socket (a net.Socket, or a fake in unit tests). */
export interface AdmittedSocket {
  readonly remoteAddress?: string | undefined;
  destroy(): void;
  once(event: 'close', fn: () => void): unknown;
}

export interface AdmissionOptions {
  readonly maxHandshaking: number;
  readonly maxPerAddress: number;
  readonly handshakeTimeoutMs: number;
}

export const DEFAULT_ADMISSION: AdmissionOptions = { maxHandshaking: MAX_HANDSHAKING, maxPerAddress: MAX_HANDSHAKES_PER_ADDRESS, handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS };

export type AdmitResult = 'admitted' | 'banned' | 'address busy';

export class WireAdmission {
  private readonly clock: Clock;
  private readonly bans: AddressBans;
  private readonly options: AdmissionOptions;
  /** Sockets in handshake, oldest first (Map keeps insertion order). */
  private readonly pending = new Map<AdmittedSocket, { key: string; timer: { cancel(): void } }>();
  private readonly perAddress = new Map<string, number>();
  /** Sockets closed to make room for newer ones (a stranger flooding, or a very busy listener). */
  evicted = 0;

  constructor(deps: { clock: Clock; bans: AddressBans }, options: AdmissionOptions = DEFAULT_ADMISSION) {
    this.clock = deps.clock;
    this.bans = deps.bans;
    this.options = options;
  }

  /** Takes in a freshly accepted socket, or refuses it (the caller closes it). */
  admit(socket: AdmittedSocket): AdmitResult {
    const key = addressKey(socket.remoteAddress);
    if (this.bans.isBanned(key)) return 'banned';
    if ((this.perAddress.get(key) ?? 0) >= this.options.maxPerAddress) return 'address busy';
    while (this.pending.size >= this.options.maxHandshaking) {
      const victim = this.evictionVictim();
      if (victim === undefined) break;
      this.forget(victim);
      this.evicted++;
      victim.destroy();
    }
    const timer = this.clock.setTimeout(() => {
      if (!this.pending.has(socket)) return;
      this.forget(socket);
      socket.destroy();
    }, this.options.handshakeTimeoutMs);
    this.pending.set(socket, { key, timer });
    this.perAddress.set(key, (this.perAddress.get(key) ?? 0) + 1);
    socket.once('close', () => this.forget(socket));
    return 'admitted';
  }

  /** The socket's connection is ready: it no longer counts against the handshake caps. */
  settled(socket: AdmittedSocket): void {
    this.forget(socket);
  }

  get handshaking(): number {
    return this.pending.size;
  }

  /** Closes every socket still in handshake (listener shutting down). */
  close(): void {
    for (const s of [...this.pending.keys()]) {
      this.forget(s);
      s.destroy();
    }
  }

  /** The oldest socket of the address with the most sockets in handshake (oldest first among equals). */
  private evictionVictim(): AdmittedSocket | undefined {
    let most = 0;
    for (const n of this.perAddress.values()) most = Math.max(most, n);
    for (const [socket, { key }] of this.pending) if (this.perAddress.get(key) === most) return socket;
    return undefined;
  }

  private forget(socket: AdmittedSocket): void {
    const entry = this.pending.get(socket);
    if (!entry) return;
    this.pending.delete(socket);
    entry.timer.cancel();
    const n = (this.perAddress.get(entry.key) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(entry.key);
    else this.perAddress.set(entry.key, n);
  }
}
