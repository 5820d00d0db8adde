// The folder of the Pollen package (a checkout, or the installed npm package): the first one above
// `from` that holds package.json. The same file runs from the TypeScript sources (cli/) and
// compiled (dist/cli/), one level deeper, so a fixed '../..' would be right in one of them only.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json in ${from} or above it`);
  }
}

/** The package's version (what a peer reports to the supernode's status page). */
export function packageVersion(from: string): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(from), 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
