// Content digests (OCI image spec "descriptor" digests). Pollen stores and verifies sha256 only;
// sha512 digests are accepted by the grammar but refused as unsupported, as distribution does.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { PollenError } from './errors.ts';

export type Digest = `sha256:${string}`;

const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;

export function isDigestLike(s: string): boolean {
  return DIGEST_GRAMMAR.test(s);
}

/** Parses a digest string, throwing ERR_INVALID_DIGEST for anything that is not `sha256:<64 hex>`. */
export function parseDigest(s: string): Digest {
  if (s.length > 200 || !DIGEST_GRAMMAR.test(s)) {
    throw new PollenError('ERR_INVALID_DIGEST', `invalid digest ${JSON.stringify(s.slice(0, 100))}`, { digest: s.slice(0, 100) });
  }
  const [algorithm, hex] = s.split(':') as [string, string];
  if (algorithm !== 'sha256') {
    throw new PollenError('ERR_INVALID_DIGEST', `unsupported digest algorithm ${algorithm}`, { digest: s });
  }
  if (!SHA256_HEX.test(hex)) {
    throw new PollenError('ERR_INVALID_DIGEST', `sha256 digest must be 64 lowercase hex characters`, { digest: s });
  }
  return s as Digest;
}

/** Whether `s` is a sha256 in 64 lowercase hex digits (a piece hash, a digest's hex). */
export function isSha256Hex(s: unknown): s is string {
  return typeof s === 'string' && SHA256_HEX.test(s);
}

export function digestHex(d: Digest): string {
  return d.slice('sha256:'.length);
}

export function sha256Digest(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A pass-through stream that hashes what flows through it and, at the end, fails with
 * ERR_DIGEST_MISMATCH or ERR_SIZE_MISMATCH instead of ending cleanly when the content is wrong.
 * Downstream consumers therefore never see a clean end for bad content.
 */
export class VerifyingStream extends Transform {
  readonly expected: Digest;
  readonly expectedSize: number | undefined;
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;

  constructor(expected: Digest, expectedSize?: number) {
    super();
    this.expected = expected;
    this.expectedSize = expectedSize;
  }

  get bytesSeen(): number {
    return this.bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedSize !== undefined && this.bytes > this.expectedSize) {
      cb(new PollenError('ERR_SIZE_MISMATCH', `content is longer than its declared ${this.expectedSize} bytes`, { digest: this.expected, expectedSize: this.expectedSize }));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.expectedSize !== undefined && this.bytes !== this.expectedSize) {
      cb(new PollenError('ERR_SIZE_MISMATCH', `content is ${this.bytes} bytes, expected ${this.expectedSize}`, { digest: this.expected, expectedSize: this.expectedSize, actualSize: this.bytes }));
      return;
    }
    const actual = `sha256:${this.hash.digest('hex')}`;
    if (actual !== this.expected) {
      cb(new PollenError('ERR_DIGEST_MISMATCH', `content hashed to ${actual}, expected ${this.expected}`, { expected: this.expected, actual }));
      return;
    }
    cb();
  }
}
