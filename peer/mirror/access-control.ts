// Private content stays private: before anything cached goes to a client, the upstream must have
// said that this client (this credential) may read this repository. The check is a HEAD with the
// client's own credentials; its answer is cached briefly per (credential, registry, repository).
// While the registry is unreachable, an expired "allowed" still serves cached content for a grace
// period; a client the registry never allowed gets nothing.
import { createHash } from 'node:crypto';
import type { Clock } from '../../src/clock.ts';

export interface AccessKey {
  readonly baseUrl: string;
  readonly name: string;
  readonly authorization: string | undefined;
}

const MAX_DECISIONS = 50_000;

export class AccessCache {
  private readonly clock: Clock;
  private readonly ttlMs: number;
  private readonly graceMs: number;
  /** key → time the upstream last allowed it. Map order is insertion order: oldest first. */
  private readonly allowedAt = new Map<string, number>();

  constructor(deps: { clock: Clock }, options: { ttlMs: number; graceMs: number }) {
    this.clock = deps.clock;
    this.ttlMs = options.ttlMs;
    this.graceMs = options.graceMs;
  }

  /** Allowed within the TTL: no upstream check needed. */
  isFresh(key: AccessKey): boolean {
    const at = this.allowedAt.get(keyOf(key));
    return at !== undefined && this.clock.now() - at < this.ttlMs;
  }

  /** Allowed once, recently enough to serve cached content while the upstream cannot be asked. */
  isWithinGrace(key: AccessKey): boolean {
    const at = this.allowedAt.get(keyOf(key));
    return at !== undefined && this.clock.now() - at < this.ttlMs + this.graceMs;
  }

  allow(key: AccessKey): void {
    const k = keyOf(key);
    this.allowedAt.delete(k);
    this.allowedAt.set(k, this.clock.now());
    if (this.allowedAt.size > MAX_DECISIONS) {
      const oldest = this.allowedAt.keys().next().value;
      if (oldest !== undefined) this.allowedAt.delete(oldest);
    }
  }

  /** The upstream refused: forget any earlier allowance at once. */
  revoke(key: AccessKey): void {
    this.allowedAt.delete(keyOf(key));
  }
}

/** Credentials are hashed into the key: they are never kept or logged in clear. */
function keyOf(key: AccessKey): string {
  const cred = key.authorization ? createHash('sha256').update(key.authorization).digest('base64url') : 'anonymous';
  return `${cred} ${key.baseUrl} ${key.name}`;
}
