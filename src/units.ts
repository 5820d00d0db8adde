// Sizes and durations as people write them on a command line: `20GiB`, `500MB`, `1.5G`; `30s`,
// `6h`, `7d`, `1h30m`. Malformed input is an ERR_INVALID_CONFIG naming what was expected.
import { PollenError } from './errors.ts';

// Single letters are binary, as docker's and Kubernetes' own `1G` mean GiB to most operators.
const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1,
  k: 1024, kib: 1024, kb: 1000,
  m: 1024 ** 2, mib: 1024 ** 2, mb: 1000 ** 2,
  g: 1024 ** 3, gib: 1024 ** 3, gb: 1000 ** 3,
  t: 1024 ** 4, tib: 1024 ** 4, tb: 1000 ** 4,
};

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000,
};

/** Bytes in `text` (`20GiB`, `512 MB`, `1048576`); a whole number of bytes, rounded down. */
export function parseByteSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new PollenError('ERR_INVALID_CONFIG', `expected a size such as 20GiB, 500MB or 1048576, got ${JSON.stringify(text)}`, { value: text });
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new PollenError('ERR_INVALID_CONFIG', `size ${JSON.stringify(text)} is too large`, { value: text });
  return bytes;
}

/** Milliseconds in `text`: one or more number+unit parts (`90s`, `1h30m`, `7d`); `0` alone is zero. */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (t === '0') return 0;
  let total = 0;
  let rest = t;
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/i.exec(rest);
    if (!m) throw new PollenError('ERR_INVALID_CONFIG', `expected a duration such as 30s, 6h or 7d, got ${JSON.stringify(text)}`, { value: text });
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]!.toLowerCase()]!;
    rest = rest.slice(m[0].length);
  }
  if (t.length === 0 || !Number.isSafeInteger(Math.round(total))) {
    throw new PollenError('ERR_INVALID_CONFIG', `expected a duration such as 30s, 6h or 7d, got ${JSON.stringify(text)}`, { value: text });
  }
  return Math.round(total);
}

/** A byte count for people: `1.5 GiB`, `512 B`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** Why `text` is not a duration (a config validator), or undefined. */
export function durationProblem(text: string): string | undefined {
  try {
    parseDuration(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
