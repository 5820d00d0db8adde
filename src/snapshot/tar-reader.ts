// The tar-stream adapter of the snapshotter (the only src/ file that imports tar-stream). Two
// quirks are handled here, once:
// - tar-stream decodes every PAX record value as UTF-8, which corrupts binary xattr values such as
//   `security.capability` (file capabilities). Its PAX decoder is swapped for one that keeps
//   `SCHILY.xattr.*` values as latin1 "binary strings" (one char per byte); `xattrValue()` turns
//   them back into the exact bytes.
// - it applies only PAX `path`, `linkpath` and `size`; `uid`, `gid` (ids above 2^21) and
//   fractional `mtime` are taken from the PAX records by `entryMeta()`, as Go's archive/tar does.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { extract, type Extract, type Header } from 'tar-stream';

export type { Header };
const XATTR_PREFIX = 'SCHILY.xattr.';

let patched = false;

function patchPaxDecoder(): void {
  if (patched) return;
  patched = true;
  const require = createRequire(import.meta.url);
  // package.json "exports" hides headers.js; it is the same module instance extract.js requires.
  const headers = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as { decodePax: (buf: Buffer) => Record<string, string> };
  headers.decodePax = (buf: Buffer): Record<string, string> => {
    const result: Record<string, string> = {};
    while (buf.length) {
      let i = 0;
      while (i < buf.length && buf[i] !== 32) i++;
      const len = parseInt(buf.subarray(0, i).toString('latin1'), 10);
      if (!len || len > buf.length) return result;
      const record = buf.subarray(i + 1, len - 1);
      const eq = record.indexOf(61); // '='
      if (eq === -1) return result;
      const key = record.subarray(0, eq).toString('utf8');
      result[key] = record.subarray(eq + 1).toString(key.startsWith(XATTR_PREFIX) ? 'latin1' : 'utf8');
      buf = buf.subarray(len);
    }
    return result;
  };
}

export function createTarExtract(): Extract {
  patchPaxDecoder();
  return extract();
}

/** The extended attributes of an entry, with their exact bytes. */
export function entryXattrs(h: Header): Array<{ name: string; value: Buffer }> {
  const out: Array<{ name: string; value: Buffer }> = [];
  for (const [key, value] of Object.entries(h.pax ?? {})) {
    if (key.startsWith(XATTR_PREFIX)) out.push({ name: key.slice(XATTR_PREFIX.length), value: Buffer.from(String(value), 'latin1') });
  }
  return out;
}

/** Owner and mtime, PAX records first (they carry what the ustar fields cannot). */
export function entryMeta(h: Header): { uid: number; gid: number; mtime: Date | undefined } {
  const pax = (h.pax ?? {}) as Record<string, string>;
  const num = (s: string | undefined): number | undefined => (s !== undefined && /^\d+(\.\d+)?$/.test(s) ? Number(s) : undefined);
  const paxMtime = num(pax.mtime);
  return {
    uid: num(pax.uid) ?? h.uid ?? 0,
    gid: num(pax.gid) ?? h.gid ?? 0,
    mtime: paxMtime !== undefined ? new Date(paxMtime * 1000) : h.mtime,
  };
}
