// The content store's quota, as `--disk-quota` gives it: a size (`20GiB`) or a share of the
// filesystem that holds the store (`80%`). Either way it is compared with Pollen's own files (blobs
// plus ingests), never with the filesystem's usage: other programs' files are not Pollen's to evict.
import { statfs } from 'node:fs/promises';
import { PollenError } from '../errors.ts';
import { formatBytes, parseByteSize } from '../units.ts';

export type QuotaSpec = { readonly bytes: number } | { readonly percent: number };

export interface DiskQuota {
  readonly bytes: number;
  /** How the quota was given and what it came to, for logs and the ERR_DISK_QUOTA message. */
  readonly label: string;
}

/** Parses `20GiB`, `500MB`, `1048576` or `80%`. */
export function parseQuota(text: string): QuotaSpec {
  const t = text.trim();
  if (t.endsWith('%')) {
    const percent = Number(t.slice(0, -1));
    if (!(percent > 0 && percent <= 100)) {
      throw new PollenError('ERR_INVALID_CONFIG', `a quota percentage is above 0 and at most 100, got ${JSON.stringify(text)}`, { value: text });
    }
    return { percent };
  }
  const bytes = parseByteSize(t);
  if (bytes <= 0) throw new PollenError('ERR_INVALID_CONFIG', `a quota is more than 0 bytes, got ${JSON.stringify(text)}`, { value: text });
  return { bytes };
}

/** Validator for config tables: the reason `text` is not a quota, or undefined. */
export function quotaProblem(text: string): string | undefined {
  try {
    parseQuota(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The quota in bytes; a percentage is of the size of the filesystem that holds `dir`. */
export async function resolveQuota(spec: QuotaSpec, dir: string, fsSize: (dir: string) => Promise<number> = filesystemBytes): Promise<DiskQuota> {
  if ('bytes' in spec) return { bytes: spec.bytes, label: formatBytes(spec.bytes) };
  const total = await fsSize(dir);
  const bytes = Math.floor((total * spec.percent) / 100);
  return { bytes, label: `${spec.percent}% of the filesystem (${formatBytes(bytes)} of ${formatBytes(total)})` };
}

export async function filesystemBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.blocks * s.bsize;
}
