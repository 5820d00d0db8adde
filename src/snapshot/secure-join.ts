// Path resolution inside a root directory, as github.com/cyphar/filepath-securejoin does it: every
// symlink met on the way is evaluated as if the root were `/`, and `..` never climbs above the
// root. The result is always a path under the root, whatever the links say. Used for the parent
// directory of every tar entry, hardlink targets and whiteouts; the last component itself is never
// followed by the applier (it lstat()s and replaces it).
import { lstat, readlink } from 'node:fs/promises';
import { posix } from 'node:path';
import { PollenError } from '../errors.ts';

/** Linux's own limit of symlinks followed while resolving one path. */
export const MAX_SYMLINKS_FOLLOWED = 40;

export interface Resolved {
  /** Absolute path under the root. */
  readonly path: string;
  /** Components relative to the root (no `.`/`..`, no symlinks among the existing ones). */
  readonly rel: string;
  /** True when `..` (in the name or in a symlink) tried to climb above the root and was clamped. */
  readonly clamped: boolean;
}

/** Lexically cleans a tar entry name to a root-relative path; reports whether `..` or `/` were clamped. */
export function cleanEntryName(name: string): { rel: string; clamped: boolean } {
  const parts: string[] = [];
  let clamped = name.startsWith('/');
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (parts.length === 0) clamped = true;
      else parts.pop();
      continue;
    }
    parts.push(c);
  }
  return { rel: parts.join('/'), clamped };
}

/** Resolves `unsafe` (relative to `root`) following symlinks scoped to the root. */
export async function secureJoin(root: string, unsafe: string): Promise<Resolved> {
  const queue = unsafe.split('/');
  const done: string[] = [];
  let clamped = false;
  let links = 0;
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (done.length === 0) clamped = true;
      else done.pop();
      continue;
    }
    const candidate = posix.join(root, ...done, c);
    const st = await lstat(candidate).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
      throw err;
    });
    if (!st?.isSymbolicLink()) {
      done.push(c);
      continue;
    }
    if (++links > MAX_SYMLINKS_FOLLOWED) {
      throw new PollenError('ERR_LAYER_INVALID', `too many levels of symbolic links resolving ${unsafe}`, { path: unsafe });
    }
    const target = await readlink(candidate);
    if (target.startsWith('/')) done.length = 0;
    queue.unshift(...target.split('/'));
  }
  const rel = done.join('/');
  return { path: rel ? posix.join(root, rel) : root, rel, clamped };
}
