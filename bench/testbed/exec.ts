// Running the host's network tools (ip, tc) and finding the tools the test bed needs. Every failure
// names the command and its stderr; the test bed is useless without root, so that is checked first.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Finds an executable on PATH (and the sbin directories), or throws naming the Debian package. */
export function findTool(name: string, debianPackage: string): string {
  if (name.startsWith('/')) {
    if (existsSync(name)) return name;
  } else {
    const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
    for (const d of dirs) {
      const p = join(d, name);
      if (d && existsSync(p)) return p;
    }
  }
  throw new Error(`${name} is required by the test bed but is not installed: apt-get install ${debianPackage} (scripts/setup.sh does this)`);
}

/** Throws a clear error unless this process runs as root (namespaces, veth, tc and ifb need CAP_NET_ADMIN). */
export function requireRoot(what = 'the multi-host test bed'): void {
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) {
    throw new Error(
      `${what} needs root: it creates network namespaces, veth pairs, a bridge, ifb devices and tc qdiscs ` +
        `(running as uid ${uid}). Run it as root, e.g. \`sudo npm run bench:fanout\` or \`sudo npx vitest run test/integration/testbed.test.ts\`.`,
    );
  }
}

export interface RunOptions {
  timeoutMs?: number;
  /** Resolve with stdout even when the command fails (for best-effort cleanup). */
  allowFail?: boolean;
  env?: NodeJS.ProcessEnv;
}

export async function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 << 20, env: options.env ?? process.env }, (err, stdout, stderr) => {
      if (err && !options.allowFail) {
        reject(new Error(`\`${cmd} ${args.join(' ')}\` failed: ${String(stderr).trim() || err.message}`));
        return;
      }
      resolve(String(stdout));
    });
  });
}

/** Synchronous variant for the last-resort cleanup in a process 'exit' handler (no event loop left). */
export function runSync(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).toString();
  } catch {
    return '';
  }
}
