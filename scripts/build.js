// `npm run build`: compiles the TypeScript (tsconfig.build.json) to dist/ and stamps dist/.built
// with the time the build started, so an edit made during the build still counts as newer.
// `--if-stale` builds only when dist/ is older than the sources (vitest's global set-up); `--clean`
// empties dist/ first (npm pack: no output of a source file that has since been removed).
import { spawnSync } from 'node:child_process';
import { rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distStaleness, STAMP } from './dist-state.js';

const root = fileURLToPath(new URL('..', import.meta.url));
if (process.argv.includes('--if-stale') && distStaleness(root) === undefined) process.exit(0);
if (process.argv.includes('--clean')) rmSync(join(root, 'dist'), { recursive: true, force: true });
const started = new Date();
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write(`build: tsc failed (${r.status ?? r.signal}); dist/ is not stamped\n`);
  process.exit(1);
}
const stamp = join(root, STAMP);
writeFileSync(stamp, `${started.toISOString()}\n`);
utimesSync(stamp, started, started);
