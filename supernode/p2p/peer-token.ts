// Each registered peer's own API credential: `<peerId>.<32 random bytes, base64url>`. The
// supernode keeps only the sha256 of the random part, finds the record by the id before the dot and
// compares hashes in constant time, so a token names exactly one peer and proves it.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface IssuedToken {
  readonly token: string;
  readonly hash: Buffer;
}

export function issuePeerToken(peerId: string): IssuedToken {
  const secret = randomBytes(32).toString('base64url');
  return { token: `${peerId}.${secret}`, hash: hashOf(secret) };
}

/** The peer id a token claims and the hash of its secret part, or undefined when malformed. */
export function parsePeerToken(token: string): { peerId: string; hash: Buffer } | undefined {
  const dot = token.lastIndexOf('.');
  if (dot <= 0 || dot === token.length - 1) return undefined;
  return { peerId: token.slice(0, dot), hash: hashOf(token.slice(dot + 1)) };
}

export function tokenMatches(hash: Buffer, stored: Buffer): boolean {
  return hash.length === stored.length && timingSafeEqual(hash, stored);
}

function hashOf(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}
