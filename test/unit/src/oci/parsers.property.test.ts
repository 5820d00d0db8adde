// Property tests of the parsers a remote client feeds the mirror: repository names, manifest
// references, digests and Range headers. Whatever the input, they never throw anything but a
// PollenError of their own code, accept exactly the grammar, and never yield a range outside the blob.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDigest } from '../../../../src/digest.ts';
import { isPollenError, type ErrorCode } from '../../../../src/errors.ts';
import { isValidName, isValidTag, MAX_NAME_LENGTH, parseImageReference, parseManifestRef, parseName } from '../../../../src/oci/names.ts';
import { parseRange } from '../../../../src/oci/range.ts';

const RUNS = { numRuns: 1_000 };
const SHA256 = /^sha256:[0-9a-f]{64}$/;

/** Returns the PollenError code thrown by `f`, undefined when it returned; fails on anything else thrown. */
function codeOf(f: () => unknown): ErrorCode | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    if (!isPollenError(err)) throw new Error(`threw a non-PollenError: ${String(err)}`);
    return err.code;
  }
}

// The distribution grammar: components of [a-z0-9]+ joined by one of . _ __ or a run of -.
const alnum = fc.stringMatching(/^[a-z0-9]{1,8}$/);
const separator = fc.constantFrom('.', '_', '__', '-', '--', '---');
const component = fc
  .tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 3 }))
  .map(([first, rest]) => first + rest.map(([s, a]) => s + a).join(''));
const validName = fc.array(component, { minLength: 1, maxLength: 6 }).map((cs) => cs.join('/'));
/** Any text, biased towards the characters that matter in paths. */
const nasty = fc.string({ unit: fc.constantFrom('a', 'b', '0', '/', '.', '_', '-', '%', 'A', ' ', ':', '@', '\\', '\n', 'é', '\u0000'), maxLength: 40 });

describe('repository names (property)', () => {
  it('accepts every name of the grammar up to the length limit', () => {
    fc.assert(
      fc.property(validName, (name) => {
        expect(isValidName(name)).toBe(name.length <= MAX_NAME_LENGTH);
      }),
      RUNS,
    );
  });

  it('refuses names with .., %, uppercase, whitespace, empty components or a separator at either end', () => {
    const spoil = fc.constantFrom(
      (n: string) => `${n}/..`,
      (n: string) => `../${n}`,
      (n: string) => `${n}/../x`,
      (n: string) => `${n}%2F`,
      (n: string) => `${n}%2e%2e`,
      (n: string) => n.toUpperCase() + 'X',
      (n: string) => `/${n}`,
      (n: string) => `${n}/`,
      (n: string) => `${n}//x`,
      (n: string) => `.${n}`,
      (n: string) => `${n}.`,
      (n: string) => `-${n}`,
      (n: string) => `${n}-`,
      (n: string) => `_${n}`,
      (n: string) => `${n}_`,
      (n: string) => `${n}___x`,
      (n: string) => `${n} `,
      (n: string) => `${n}\n`,
      (n: string) => `${n}/${'a'.repeat(MAX_NAME_LENGTH)}`,
    );
    fc.assert(
      fc.property(validName, spoil, (name, f) => {
        const bad = f(name);
        expect(isValidName(bad)).toBe(false);
        expect(codeOf(() => parseName(bad))).toBe('ERR_INVALID_NAME');
      }),
      RUNS,
    );
  });

  it('never throws anything but ERR_INVALID_NAME, and whatever it accepts is grammar-shaped', () => {
    fc.assert(
      fc.property(fc.oneof(nasty, fc.string({ maxLength: 300 })), (s) => {
        const code = codeOf(() => parseName(s));
        if (code === undefined) {
          expect(s.length).toBeLessThanOrEqual(MAX_NAME_LENGTH);
          expect(s).toMatch(/^[a-z0-9]/);
          expect(s).toMatch(/[a-z0-9]$/);
          expect(s).not.toMatch(/\.\.|\/\/|%|[A-Z]|\s/);
        } else {
          expect(code).toBe('ERR_INVALID_NAME');
        }
      }),
      RUNS,
    );
  });
});

describe('manifest references (property)', () => {
  const validTag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/);

  it('accepts every tag of the grammar, refuses over-long ones', () => {
    fc.assert(
      fc.property(validTag, (tag) => {
        expect(parseManifestRef(tag)).toEqual({ kind: 'tag', tag });
      }),
      RUNS,
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9]{129,200}$/), (tag) => {
        expect(codeOf(() => parseManifestRef(tag))).toBe('ERR_INVALID_REFERENCE');
      }),
      { numRuns: 200 },
    );
  });

  it('never throws anything but a reference or digest error; a tag never holds / or %, a digest is always sha256 hex', () => {
    fc.assert(
      fc.property(fc.oneof(nasty, fc.string({ maxLength: 200 }), validTag.map((t) => `${t}/x`)), (s) => {
        let ref: ReturnType<typeof parseManifestRef> | undefined;
        const code = codeOf(() => (ref = parseManifestRef(s)));
        if (code !== undefined) {
          expect(['ERR_INVALID_REFERENCE', 'ERR_INVALID_DIGEST']).toContain(code);
          return;
        }
        if (ref!.kind === 'tag') {
          expect(isValidTag(ref!.tag)).toBe(true);
          expect(ref!.tag).not.toMatch(/[/%:\s]/);
        } else {
          expect(ref!.digest).toMatch(SHA256);
        }
      }),
      RUNS,
    );
  });
});

describe('image references (property)', () => {
  it('never throw anything but a reference or digest error; what they yield has a valid name, tag and digest', () => {
    const hostish = fc.constantFrom('', 'registry.example/', '127.0.0.1:5000/', 'localhost/', 'EVIL.example:1/');
    const reference = fc.oneof(fc.tuple(hostish, fc.oneof(validName, nasty), fc.constantFrom('', ':v1', ':../x', '@sha256:00', ':')).map(([h, n, t]) => h + n + t), fc.string({ maxLength: 120 }));
    fc.assert(
      fc.property(reference, (s) => {
        let r: ReturnType<typeof parseImageReference> | undefined;
        const code = codeOf(() => (r = parseImageReference(s)));
        if (code !== undefined) {
          expect(['ERR_INVALID_REFERENCE', 'ERR_INVALID_DIGEST']).toContain(code);
          return;
        }
        expect(isValidName(r!.name)).toBe(true);
        if (r!.tag !== undefined) expect(isValidTag(r!.tag)).toBe(true);
        if (r!.digest !== undefined) expect(r!.digest).toMatch(SHA256);
      }),
      RUNS,
    );
  });
});

describe('digests (property)', () => {
  const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);

  it('accepts exactly sha256:<64 lowercase hex>', () => {
    fc.assert(
      fc.property(hex64, (hex) => {
        expect(parseDigest(`sha256:${hex}`)).toBe(`sha256:${hex}`);
      }),
      RUNS,
    );
  });

  it('refuses near misses (uppercase, wrong length, other algorithms, padding) with ERR_INVALID_DIGEST', () => {
    const miss = fc.oneof(
      hex64.filter((h) => /[a-f]/.test(h)).map((h) => `sha256:${h.toUpperCase()}`),
      hex64.map((h) => `sha256:${h.slice(1)}`),
      hex64.map((h) => `sha256:${h}0`),
      hex64.map((h) => `sha512:${h}${h}`),
      hex64.map((h) => `SHA256:${h}`),
      hex64.map((h) => `sha256:${h}\n`),
      hex64.map((h) => ` sha256:${h}`),
      hex64.map((h) => `sha256:${h}/..`),
      hex64.map((h) => `sha256:${h.slice(0, 63)}g`),
      hex64.map((h) => `sha256%3A${h}`),
    );
    fc.assert(
      fc.property(miss, (s) => {
        expect(codeOf(() => parseDigest(s))).toBe('ERR_INVALID_DIGEST');
      }),
      RUNS,
    );
  });

  it('never throws on garbage other than ERR_INVALID_DIGEST, and accepts only the sha256 shape', () => {
    fc.assert(
      fc.property(fc.oneof(nasty, fc.string({ maxLength: 300 }), fc.string({ minLength: 1000, maxLength: 5000 })), (s) => {
        const code = codeOf(() => parseDigest(s));
        expect(code === undefined).toBe(SHA256.test(s));
        if (code !== undefined) expect(code).toBe('ERR_INVALID_DIGEST');
      }),
      RUNS,
    );
  });
});

describe('Range (property)', () => {
  const size = fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 2 ** 40 }));
  const num = fc.oneof(fc.integer({ min: 0, max: 2 ** 41 }).map(String), fc.constant(''), fc.constant('99999999999999999999999'), fc.constant('00'));
  const header = fc.oneof(
    fc.tuple(num, num).map(([a, b]) => `bytes=${a}-${b}`),
    fc.tuple(num, num, num, num).map(([a, b, c, d]) => `bytes=${a}-${b},${c}-${d}`),
    fc.string({ maxLength: 40 }).map((s) => `bytes=${s}`),
    fc.string({ maxLength: 40 }),
  );

  it('never throws anything but ERR_INVALID_RANGE and never returns a range outside the blob', () => {
    fc.assert(
      fc.property(header, size, (h, n) => {
        let r: ReturnType<typeof parseRange>;
        const code = codeOf(() => (r = parseRange(h, n)));
        if (code !== undefined) {
          expect(code).toBe('ERR_INVALID_RANGE');
          return;
        }
        if (r === undefined) return;
        expect(Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end)).toBe(true);
        expect(r.start).toBeGreaterThanOrEqual(0);
        expect(r.end).toBeGreaterThanOrEqual(r.start);
        expect(r.end).toBeLessThan(n);
      }),
      RUNS,
    );
  });

  it('agrees with the single-range rule of RFC 9110 for first-last ranges', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 1, max: 2 ** 40 }), (a, b, n) => {
        const code = codeOf(() => parseRange(`bytes=${a}-${b}`, n));
        if (a >= n || b < a) expect(code).toBe('ERR_INVALID_RANGE');
        else expect(parseRange(`bytes=${a}-${b}`, n)).toEqual({ start: a, end: Math.min(b, n - 1) });
      }),
      RUNS,
    );
  });

  it('refuses every multi-range header, whatever the ranges', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(1000), fc.nat(1000)), { minLength: 2, maxLength: 5 }), fc.integer({ min: 1, max: 5000 }), (ranges, n) => {
        const h = `bytes=${ranges.map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`).join(',')}`;
        expect(codeOf(() => parseRange(h, n))).toBe('ERR_INVALID_RANGE');
      }),
      RUNS,
    );
  });
});
