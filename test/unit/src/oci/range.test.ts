import { describe, expect, it } from 'vitest';
import { contentRange, parseRange } from '../../../../src/oci/range.ts';

describe('Range', () => {
  it('parses first-last, first-, and suffix ranges, clamping to the size', () => {
    expect(parseRange('bytes=0-99', 1000)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=100-', 1000)).toEqual({ start: 100, end: 999 });
    expect(parseRange('bytes=-100', 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRange('bytes=-5000', 1000)).toEqual({ start: 0, end: 999 });
    expect(parseRange('bytes=990-5000', 1000)).toEqual({ start: 990, end: 999 });
  });
  it('returns undefined for no header or a non-bytes unit', () => {
    expect(parseRange(undefined, 10)).toBeUndefined();
    expect(parseRange('items=0-1', 10)).toBeUndefined();
  });
  it.each(['bytes=1000-', 'bytes=5-4', 'bytes=-0', 'bytes=-', 'bytes=0-1,3-4', 'bytes=a-b'])('refuses %s with ERR_INVALID_RANGE', (h) => {
    expect(() => parseRange(h, 1000)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_RANGE' }));
  });
  it('formats Content-Range', () => {
    expect(contentRange({ start: 0, end: 99 }, 1000)).toBe('bytes 0-99/1000');
  });
});
