// Small helpers for running clients inside test-bed hosts: waiting for an HTTP endpoint (with curl,
// from inside the host's namespace) and pulling an image with skopeo under GNU time.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findTool, run } from '../testbed/exec.ts';
import type { Host, Testbed } from '../testbed/testbed.ts';
import type { BenchImage } from './image.ts';
import type { PullOutcome } from './system.ts';

const POLL_MS = 100;

/** Waits until something answers HTTP at url from inside the host (any status). */
export async function waitHttp(bed: Testbed, host: Host, url: string, timeoutMs = 30_000): Promise<void> {
  const curl = findTool('curl', 'curl');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const code = await run(findTool('ip', 'iproute2'), ['netns', 'exec', host.ns, curl, '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', url], { allowFail: true });
    if (/^[1-5]\d\d$/.test(code.trim())) return;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(`nothing answered ${url} from host ${host.name} within ${timeoutMs} ms`);
}

export interface SkopeoPullOptions {
  /** Pull `docker://<from>/<repo>:<tag>`. */
  from: string;
  /** A registries.conf mapping `from` to a mirror (Pollen's peer), if any. */
  mirror?: string;
}

export async function skopeoPull(bed: Testbed, host: Host, image: BenchImage, dir: string, t0: number, timeoutMs: number, options: SkopeoPullOptions): Promise<PullOutcome> {
  const skopeo = findTool('skopeo', 'skopeo');
  const args = ['copy', '--quiet', '--insecure-policy', '--src-tls-verify=false'];
  if (options.mirror) {
    const conf = join(dir, `registries-${host.name}.conf`);
    await writeFile(
      conf,
      `[[registry]]\nprefix = "${options.from}"\nlocation = "${options.from}"\ninsecure = true\n` +
        `[[registry.mirror]]\nlocation = "${options.mirror}"\ninsecure = true\n`,
    );
    args.unshift('--registries-conf', conf);
  }
  args.push(`docker://${options.from}/${image.repo}:${image.tag}`, `oci:${join(dir, `pulled-${host.name}`)}:${image.tag}`);
  const r = await bed.runTimed(host, skopeo, args, { timeoutMs });
  const seconds = (Date.now() - t0) / 1000;
  const ok = r.exitCode === 0;
  return { ok, seconds, client: r.usage, error: ok ? undefined : `skopeo exited ${r.exitCode}: ${r.output.trim().slice(-500)}` };
}
