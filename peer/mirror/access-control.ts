// Private content stays private: before anything cached goes to a client, the upstream must have
// said that this client (this credential) may read this object (this digest) in this repository of
// this registry. The check is a HEAD on that exact object with the client's own credentials; its
// answer is cached briefly per (credential, registry, repository, object). A registry links blobs
// to repositories, so an allowance for one digest says nothing about another, even in the same
// repository: `public/app` readable by anyone does not make a private layer readable through it.
// While the registry is unreachable, an expired "allowed" still serves cached content for a grace
// period; a client the registry never allowed this object gets nothing.
import { createHash } from 'node:crypto';
import type { Clock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';

/** The object a decision is about: a blob or a manifest, by digest. */
export interface AccessObject {
  readonly kind: 'blob' | 'manifest';
  readonly digest: Digest;
}

export interface AccessKey {
  readonly baseUrl: string;
  readonly name: string;
  readonly authorization: string | undefined;
  readonly object: AccessObject;
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

  /** The upstream refused or no longer has the object: forget any earlier allowance at once. */
  revoke(key: AccessKey): void {
    this.allowedAt.delete(keyOf(key));
  }

  get size(): number {
    return this.allowedAt.size;
  }
}

/** Credentials are hashed into the key: they are never kept or logged in clear. */
function keyOf(key: AccessKey): string {
  const cred = key.authorization ? createHash('sha256').update(key.authorization).digest('base64url') : 'anonymous';
  return JSON.stringify([cred, key.baseUrl, key.name, key.object.kind, key.object.digest]);
}
