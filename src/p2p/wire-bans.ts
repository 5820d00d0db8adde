// The peer's reputation of other peers: who is shut out, for how long. Two lists per peer process,
// each shared by everything that talks to other peers, so a peer that misbehaves once is shut out
// of all of them:
// - AddressBans: addresses that broke the wire protocol (oversize frame, bad index or length, a
//   malformed handshake, a request for a piece never announced): refused by the listener and never
//   dialled. Keyed by IP address (the port of a dialler changes with every connection);
//   IPv4-mapped IPv6 counts as IPv4.
// - peer-id bans (ExpiringBans): parents that sent a piece that failed verification; no transfer
//   dials them again (several peers may share an address, as on one host, so these are by id).
// Both last BAN_MS and are bounded: past MAX_BANNED_ADDRESSES the ban that ends soonest makes room.
import type { Clock } from '../clock.ts';

export const BAN_MS = 10 * 60_000;
export const MAX_BANNED_ADDRESSES = 4096;

/** The address a ban or a per-address cap is keyed by. */
export function addressKey(address: string | undefined): string {
  const a = (address ?? '').toLowerCase();
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/** Keys banned for a while; bounded. */
export class ExpiringBans {
  private readonly clock: Clock;
  private readonly until = new Map<string, number>();
  private readonly banMs: number;
  private readonly keyOf: (raw: string | undefined) => string;

  constructor(deps: { clock: Clock }, options: { banMs?: number; keyOf?: (raw: string | undefined) => string } = {}) {
    this.clock = deps.clock;
    this.banMs = options.banMs ?? BAN_MS;
    this.keyOf = options.keyOf ?? ((raw) => raw ?? '');
  }

  ban(address: string | undefined): void {
    const key = this.keyOf(address);
    if (key === '') return;
    this.until.delete(key);
    if (this.until.size >= MAX_BANNED_ADDRESSES) this.prune();
    if (this.until.size >= MAX_BANNED_ADDRESSES) {
      // Insertion order = ending order (every ban lasts banMs): the first one ends soonest.
      const first = this.until.keys().next().value;
      if (first !== undefined) this.until.delete(first);
    }
    this.until.set(key, this.clock.now() + this.banMs);
  }

  isBanned(address: string | undefined): boolean {
    const key = this.keyOf(address);
    const until = this.until.get(key);
    if (until === undefined) return false;
    if (until > this.clock.now()) return true;
    this.until.delete(key);
    return false;
  }

  get size(): number {
    return this.until.size;
  }

  private prune(): void {
    const now = this.clock.now();
    for (const [k, until] of this.until) {
      if (until > now) break;
      this.until.delete(k);
    }
  }
}

/** Wire protocol offenders, by IP address. */
export class AddressBans extends ExpiringBans {
  constructor(deps: { clock: Clock }, options: { banMs?: number } = {}) {
    super(deps, { ...options, keyOf: addressKey });
  }
}
