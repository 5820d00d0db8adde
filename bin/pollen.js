#!/usr/bin/env node
// The `pollen` command: runs the compiled JavaScript in dist/ (`npm run build`), with source maps
// on, so stack traces point at the TypeScript sources. In a checkout (the sources are next to
// dist/) a dist/ that is missing or older than the sources is refused rather than run: it would be
// old code. The npm package ships dist/ alone, so there is nothing to compare with there.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';

const root = dirname(import.meta.dirname);
if (existsSync(new URL('../tsconfig.build.json', import.meta.url))) {
  const { distStaleness } = await import('../scripts/dist-state.js');
  const stale = distStaleness(root);
  if (stale !== undefined) {
    process.stderr.write(`pollen: ${stale}: run \`npm run build\` in ${root}\n`);
    process.exit(1);
  }
}
// The same as `node --enable-source-maps`, for every module loaded from here on.
process.setSourceMapsEnabled(true);
const { main } = await import('../dist/bundle/main.js');
await main(process.argv);
