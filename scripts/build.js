// `npm run build`: compiles the TypeScript (tsconfig.build.json) to dist/, bundles the `pollen`
// command (dist/cli/main.js and what it loads) into dist/bundle/, and stamps dist/.built with the
// time the build started (so an edit made during the build still counts as newer) and the source
// files it compiled (scripts/dist-state.js).
// The bundle is what bin/pollen.js runs: node resolving and loading ~400 module files was half of a
// daemon's start (a peer until its mirror answers: 0.51-0.57 CPU s from dist/, 0.30-0.36 bundled;
// 0.27-0.29 as one file). Code splitting keeps each command's modules in chunks loaded only when it
// runs. Left outside: classic-level (a native addon) and tar-stream (src/snapshot/tar-reader.ts
// swaps its PAX decoder through require, which must reach the instance the unpacker uses).
// `--if-stale` builds only when dist/ is older than the sources (vitest's global set-up); `--clean`
// empties dist/ first (npm pack: no output of a source file that has since been removed).
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distStaleness, sourceFiles, STAMP, stampText } from './dist-state.js';

const root = fileURLToPath(new URL('..', import.meta.url));
if (process.argv.includes('--if-stale') && distStaleness(root) === undefined) process.exit(0);
if (process.argv.includes('--clean')) rmSync(join(root, 'dist'), { recursive: true, force: true });
const started = new Date();
// The files as they are when the build starts: one added during the build makes the next check stale.
const files = sourceFiles(root);
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write(`build: tsc failed (${r.status ?? r.signal}); dist/ is not stamped\n`);
  process.exit(1);
}
// `pollen bench` loads bench/ on demand from dist/bench/ (a checkout; the npm package has no
// benchmarks, and they use test helpers): those imports stay imports, pointed at dist/ from here.
const benchOutside = {
  name: 'bench-outside',
  setup(b) {
    b.onResolve({ filter: /\/bench\//, namespace: 'file' }, (args) => {
      if (args.kind !== 'dynamic-import' || !args.importer.startsWith(join(root, 'dist', 'cli'))) return undefined;
      const target = resolve(dirname(args.importer), args.path);
      const path = relative(join(root, 'dist', 'bundle'), target).split(sep).join('/');
      return { path: path.startsWith('.') ? path : `./${path}`, external: true };
    });
  },
};

// Chunks are named by their content: last build's would pile up.
rmSync(join(root, 'dist/bundle'), { recursive: true, force: true });
try {
  await build({
    entryPoints: [join(root, 'dist/cli/main.js')],
    outdir: join(root, 'dist/bundle'),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Maps through dist/'s own maps to the TypeScript sources.
    sourcemap: true,
    // The maps point at the sources; copies of them inside tripled the maps (6.8 -> 2.2 MB).
    sourcesContent: false,
    external: ['classic-level', 'tar-stream'],
    plugins: [benchOutside],
    // The CommonJS dependencies' require() of node's modules, in an ES module.
    banner: { js: "import { createRequire as __pollenCreateRequire } from 'node:module'; const require = __pollenCreateRequire(import.meta.url);" },
    logLevel: 'warning',
  });
} catch (err) {
  process.stderr.write(`build: bundling failed (${err.message}); dist/ is not stamped\n`);
  process.exit(1);
}
const stamp = join(root, STAMP);
writeFileSync(stamp, stampText(started, files));
utimesSync(stamp, started, started);
