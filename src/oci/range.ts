// HTTP Range for blobs: a single `bytes=` range (first-last, first-, or -suffix), as registries and
// engines use it. Several ranges in one header are not supported (registries don't either).
import { PollenError } from '../errors.ts';
import type { ByteRange } from '../content-store.ts';

/**
 * Returns the inclusive range to serve, `undefined` for the whole blob, or throws ERR_INVALID_RANGE
 * (416) when unsatisfiable. A header that is not a bytes range is ignored, as RFC 9110 allows.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) {
    if (/^bytes=/.test(header.trim())) {
      throw new PollenError('ERR_INVALID_RANGE', `unsupported range ${JSON.stringify(header.slice(0, 100))}`, { size });
    }
    return undefined;
  }
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') throw new PollenError('ERR_INVALID_RANGE', 'empty range', { size });
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) throw new PollenError('ERR_INVALID_RANGE', `range ${header} is unsatisfiable`, { size });
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || (last !== '' && Number(last) < start)) {
    throw new PollenError('ERR_INVALID_RANGE', `range ${header} is unsatisfiable for ${size} bytes`, { size });
  }
  return { start, end };
}

export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}
