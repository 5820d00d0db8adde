import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPollenError } from '../../../src/errors.ts';
import { parseByteSize, parseDuration } from '../../../src/units.ts';

describe('units', () => {
  it('reads sizes with binary and decimal units', () => {
    expect(parseByteSize('20GiB')).toBe(20 * 1024 ** 3);
    expect(parseByteSize('20G')).toBe(20 * 1024 ** 3);
    expect(parseByteSize('500MB')).toBe(500_000_000);
    expect(parseByteSize('1.5 KiB')).toBe(1536);
    expect(parseByteSize('1048576')).toBe(1048576);
  });

  it('reads durations made of number+unit parts', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('0')).toBe(0);
  });

  it('refuses anything else with ERR_INVALID_CONFIG, never a number by accident', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (s) => {
        for (const parse of [parseByteSize, parseDuration]) {
          try {
            const v = parse(s);
            expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
          } catch (err) {
            expect(isPollenError(err, 'ERR_INVALID_CONFIG')).toBe(true);
          }
        }
      }),
      { numRuns: 2000 },
    );
    for (const bad of ['', '10 parsecs', '5x', '1h 30m', '-1s', 'GiB']) expect(() => parseDuration(bad) + parseByteSize(bad), bad).toThrow();
  });
});
