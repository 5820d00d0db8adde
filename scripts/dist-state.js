// Whether dist/ (the compiled JavaScript the `pollen` command runs) is as new as the TypeScript it
// is built from. In a checkout a stale dist/ would silently run old code: bin/pollen.js refuses to
// start then, and `node scripts/build.js --if-stale` (vitest's global set-up) rebuilds.
// dist/.built is written by scripts/build.js with the time its build started and the source files
// it compiled: a source file changed after that time, or a file added, removed or renamed since,
// makes dist/ stale. Folders' times are not read: an editor's save of a markdown file (a temporary
// file renamed over it) changes its folder's time without changing any source.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** What tsconfig.build.json compiles (test/helpers/ comes along as an import of bench/). */
export const SOURCE_DIRS = ['src', 'peer', 'supernode', 'cli', 'bench', 'test/helpers'];
const SOURCE_FILES = ['tsconfig.json', 'tsconfig.build.json'];
export const STAMP = join('dist', '.built');

function collect(root, dir, out) {
  const path = join(root, dir);
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isDirectory()) {
    out.push({ path: dir, mtimeMs: st.mtimeMs });
    return;
  }
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) collect(root, join(dir, entry.name), out);
    else if (entry.name.endsWith('.ts')) out.push({ path: join(dir, entry.name), mtimeMs: statSync(join(path, entry.name)).mtimeMs });
  }
}

/** The files dist/ is built from (relative paths, sorted) with their modification times. */
export function sourceFiles(root) {
  const out = [];
  for (const f of [...SOURCE_DIRS, ...SOURCE_FILES]) collect(root, f, out);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The stamp's text: the build's start time, then the source files it compiled, one a line. */
export function stampText(started, files) {
  return `${started.toISOString()}\n${files.map((f) => f.path).join('\n')}\n`;
}

/** Why dist/ under `root` cannot be run as it is, or undefined when it is up to date. */
export function distStaleness(root) {
  const stampPath = join(root, STAMP);
  const stamp = statSync(stampPath, { throwIfNoEntry: false });
  if (!stamp) return 'dist/ has not been built';
  const files = sourceFiles(root);
  const newest = files.reduce((a, b) => (b.mtimeMs > a.mtimeMs ? b : a), { path: '', mtimeMs: 0 });
  if (newest.mtimeMs > stamp.mtimeMs) return `dist/ is older than ${newest.path || '.'}`;
  const built = readFileSync(stampPath, 'utf8').split('\n').slice(1).filter(Boolean);
  const now = files.map((f) => f.path);
  const added = now.filter((f) => !built.includes(f));
  const removed = built.filter((f) => !now.includes(f));
  if (added.length > 0 || removed.length > 0) return `dist/ was built from other source files (${[...added.map((f) => `new ${f}`), ...removed.map((f) => `gone ${f}`)].slice(0, 3).join(', ')})`;
  return undefined;
}
