// Vitest's global set-up: tests start the `pollen` command, which runs the compiled dist/ and
// refuses a dist/ older than the sources; this rebuilds it first when it is stale (cheap when not).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export function setup(): void {
  const root = join(import.meta.dirname, '..');
  execFileSync(process.execPath, [join(root, 'scripts', 'build.js'), '--if-stale'], { cwd: root, stdio: 'inherit' });
}
