// Whether dist/ (the compiled JavaScript the `pollen` command runs) is as new as the TypeScript it
// is built from. In a checkout a stale dist/ would silently run old code: bin/pollen.js refuses to
// start then, and `node scripts/build.js --if-stale` (vitest's global set-up) rebuilds.
// dist/.built is written by scripts/build.js with the time its build started; a source file or
// folder (a file added, removed or renamed) changed after that time makes dist/ stale.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** What tsconfig.build.json compiles (test/helpers/ comes along as an import of bench/). */
export const SOURCE_DIRS = ['src', 'peer', 'supernode', 'cli', 'bench', 'test/helpers'];
const SOURCE_FILES = ['tsconfig.json', 'tsconfig.build.json'];
export const STAMP = join('dist', '.built');

function newestIn(dir, newest) {
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st) return newest;
  if (st.mtimeMs > newest.mtimeMs) newest = { path: dir, mtimeMs: st.mtimeMs };
  if (!st.isDirectory()) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) newest = newestIn(join(dir, entry.name), newest);
    else if (entry.name.endsWith('.ts')) {
      const path = join(dir, entry.name);
      const mtimeMs = statSync(path).mtimeMs;
      if (mtimeMs > newest.mtimeMs) newest = { path, mtimeMs };
    }
  }
  return newest;
}

/** Why dist/ under `root` cannot be run as it is, or undefined when it is up to date. */
export function distStaleness(root) {
  const stamp = statSync(join(root, STAMP), { throwIfNoEntry: false });
  if (!stamp) return 'dist/ has not been built';
  let newest = { path: '', mtimeMs: 0 };
  for (const f of [...SOURCE_DIRS, ...SOURCE_FILES]) newest = newestIn(join(root, f), newest);
  if (newest.mtimeMs > stamp.mtimeMs) return `dist/ is older than ${relative(root, newest.path) || '.'}`;
  return undefined;
}
