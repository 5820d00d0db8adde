#!/usr/bin/env node
// The `pollen` command: runs the compiled JavaScript in dist/ (`npm run build`). Source maps are
// off unless asked for (`NODE_OPTIONS=--enable-source-maps`): node reads an error's stack whenever a
// stream is destroyed with one (a closed socket, an aborted body), and with maps on the first such
// read parses the bundle's 2 MB map, 0.1-0.16 CPU s in every daemon of the fan-out bed. The
// bundle keeps function names, so stacks stay readable without them. In a checkout (the sources are next to
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
const { main } = await import('../dist/bundle/main.js');
await main(process.argv);
