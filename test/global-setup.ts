// Vitest's global set-up: tests start the `pollen` command, which runs the compiled dist/ and
// refuses a dist/ older than the sources; this rebuilds it first when it is stale (cheap when not).
// A failed build (a syntax error somewhere) does not stop the run: tests that need no daemon still
// run, and each daemon start fails with bin/pollen.js's "run `npm run build`" message.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export function setup(): void {
  const root = join(import.meta.dirname, '..');
  try {
    execFileSync(process.execPath, [join(root, 'scripts', 'build.js'), '--if-stale'], { cwd: root, stdio: 'inherit' });
  } catch {
    process.stderr.write('global set-up: `npm run build` failed (above); tests that start `pollen` will fail\n');
  }
}
