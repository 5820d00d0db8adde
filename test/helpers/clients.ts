// Real registry clients pointed at a Pollen mirror: skopeo (registries.conf mirror) and containerd's
// ctr (hosts.toml, which adds ?ns=), each with private config and state in a temp directory.
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileP, requireTool, spawnLogged, stopProcess, waitFor } from './tools.ts';
import { existsSync } from 'node:fs';

/** The registry host name clients use; it never resolves: only the mirror can reach it. */
export const UPSTREAM_HOST = 'upstream.invalid';

export async function skopeoPullViaMirror(mirrorHost: string, image: string, destDir: string, options: { creds?: string } = {}): Promise<void> {
  const skopeo = requireTool('skopeo', 'skopeo');
  const conf = join(await mkdtemp(join(tmpdir(), 'pollen-skopeo-')), 'registries.conf');
  await writeFile(
    conf,
    `[[registry]]\nprefix = "${UPSTREAM_HOST}"\nlocation = "${UPSTREAM_HOST}"\n[[registry.mirror]]\nlocation = "${mirrorHost}"\ninsecure = true\n`,
  );
  const args = ['--registries-conf', conf, 'copy', '--quiet', '--insecure-policy', '--src-tls-verify=false'];
  if (options.creds) {
    // skopeo gives --src-creds to the named registry only; a mirror's credentials are looked up by
    // the mirror's own host in an auth file, as a user would configure them.
    const auth = Buffer.from(options.creds).toString('base64');
    await writeFile(join(conf, '..', 'auth.json'), JSON.stringify({ auths: { [mirrorHost]: { auth }, [UPSTREAM_HOST]: { auth } } }));
    args.push('--src-authfile', join(conf, '..', 'auth.json'));
  }
  if (process.env.SKOPEO_DEBUG) args.unshift('--debug');
  args.push(`docker://${UPSTREAM_HOST}/${image}`, `oci:${destDir}:pulled`);
  try {
    await execFileP(skopeo, args, { maxBuffer: 16 << 20, timeout: 300_000 });
  } finally {
    await rm(join(conf, '..'), { recursive: true, force: true });
  }
}

export class Containerd {
  private constructor(
    readonly dir: string,
    readonly socket: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(): Promise<Containerd> {
    const bin = requireTool('containerd', 'containerd');
    requireTool('ctr', 'containerd');
    const dir = await mkdtemp(join(tmpdir(), 'pollen-containerd-'));
    const socket = join(dir, 'containerd.sock');
    await writeFile(
      join(dir, 'config.toml'),
      `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n` +
        `[grpc]\n  address = "${socket}"\n[ttrpc]\n  address = "${dir}/ttrpc.sock"\n`,
    );
    const { child, output } = spawnLogged(bin, ['--config', join(dir, 'config.toml')]);
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`containerd exited: ${output()}`);
      return existsSync(socket);
    }, 'containerd socket');
    return new Containerd(dir, socket, child);
  }

  /** `ctr image pull --hosts-dir` through the mirror; returns ctr's output. */
  async pullViaMirror(mirrorHost: string, image: string, options: { namespace?: string; user?: string; platform?: string } = {}): Promise<string> {
    const hostsDir = join(this.dir, 'certs.d');
    await mkdir(join(hostsDir, UPSTREAM_HOST), { recursive: true });
    await writeFile(
      join(hostsDir, UPSTREAM_HOST, 'hosts.toml'),
      `server = "https://${UPSTREAM_HOST}"\n\n[host."http://${mirrorHost}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const args = ['-a', this.socket, '-n', options.namespace ?? 'pollen', 'image', 'pull', '--hosts-dir', hostsDir];
    if (options.user) args.push('--user', options.user);
    if (options.platform) args.push('--platform', options.platform);
    args.push(`${UPSTREAM_HOST}/${image}`);
    const { stdout, stderr } = await execFileP('ctr', args, { maxBuffer: 16 << 20, timeout: 300_000 });
    return stdout + stderr;
  }

  async contentGet(digest: string, namespace = 'pollen'): Promise<Buffer> {
    const { stdout } = await execFileP('ctr', ['-a', this.socket, '-n', namespace, 'content', 'get', digest], { encoding: 'buffer', maxBuffer: 1 << 30 });
    return stdout;
  }

  async stop(): Promise<void> {
    await stopProcess(this.child);
    await rm(this.dir, { recursive: true, force: true });
  }
}
