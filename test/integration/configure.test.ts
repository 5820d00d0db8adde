// `pollen configure` against the real engines: each engine reads the file `pollen configure --write`
// merged into an operator's existing configuration, and pulls through a real `pollen peer` (itself
// configured by a --config file) in front of a real registry. The registry is named by a host that
// does not resolve (or, for dockerd, Docker Hub behind a dead proxy), so only the peer can serve it.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Containerd, UPSTREAM_HOST } from '../helpers/clients.ts';
import { OciLayout, randomFileLayer, type BuiltLayer } from '../helpers/images.ts';
import { POLLEN_BIN, PollenProcess } from '../helpers/pollen.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { execFileP, requireTool, spawnLogged, stopProcess, waitFor } from '../helpers/tools.ts';

const IMAGE = 'library/pollen-configure';
const FILE_SECRET = 'cluster-secret-from-the-config-file-7f3a9c';

async function configure(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return execFileP(process.execPath, [POLLEN_BIN, 'configure', ...args], { timeout: 60_000 });
}

describe('pollen configure with the real engines', () => {
  let registry: TestRegistry;
  let peer: PollenProcess;
  let dir: string;
  let layer: BuiltLayer;

  beforeAll(async () => {
    registry = await TestRegistry.start();
    dir = await mkdtemp(join(tmpdir(), 'pollen-configure-'));
    layer = await randomFileLayer('configure', 300 * 1024);
    const layout = new OciLayout(join(dir, 'layout'));
    layout.tag(layout.addImage([layer]), 'latest');
    await layout.save();
    await registry.push(layout.dir, 'latest', `${IMAGE}:latest`);
    // The peer's registries come from its config file: containerd names the registry (?ns=), the
    // others reach the default upstream.
    await writeFile(join(dir, 'peer.yaml'), `upstream: ${registry.url}\nregistry:\n  ${UPSTREAM_HOST}: ${registry.url}\nupload-slots: 4\nsecret: "${FILE_SECRET}"\n`);
    peer = await PollenProcess.peer(['--config', join(dir, 'peer.yaml')]);
  });

  afterAll(async () => {
    await peer?.stop();
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the peer took its settings from its --config file, and logged them once with the secret redacted', () => {
    const start = peer.output().split('\n').filter((l) => l.includes('"configFile"'));
    expect(start).toHaveLength(1);
    expect(JSON.parse(start[0]!)).toMatchObject({ configFile: join(dir, 'peer.yaml'), config: { upstream: registry.url, uploadSlots: 4, secret: '[redacted]' } });
    expect(peer.output()).not.toContain(FILE_SECRET);
  });

  it('containerd pulls through the peer with the hosts.toml merged into an existing one', async () => {
    const certs = join(dir, 'certs.d');
    await mkdir(join(certs, UPSTREAM_HOST), { recursive: true });
    // An operator's file with a host that is down: the peer goes in front of it.
    await writeFile(join(certs, UPSTREAM_HOST, 'hosts.toml'), `server = "https://${UPSTREAM_HOST}"\n\n[host."http://127.0.0.1:9"]\n  capabilities = ["pull", "resolve"]\n`);
    await configure(['containerd', '--mirror', peer.url, '--registry', UPSTREAM_HOST, '--write', '--config-dir', certs]);
    const written = await readFile(join(certs, UPSTREAM_HOST, 'hosts.toml'), 'utf8');
    expect(written.indexOf(`[host."${peer.url}"]`)).toBeLessThan(written.indexOf('[host."http://127.0.0.1:9"]'));
    // upstream.invalid does not resolve and the other host is down: only the peer can serve this pull.
    const containerd = await Containerd.start();
    try {
      await execFileP('ctr', ['-a', containerd.socket, '-n', 'pollen', 'image', 'pull', '--hosts-dir', certs, `${UPSTREAM_HOST}/${IMAGE}:latest`], { timeout: 300_000 });
      expect(sha256hex(await containerd.contentGet(layer.descriptor.digest))).toBe(layer.descriptor.digest);
    } finally {
      await containerd.stop();
    }
  });

  it("skopeo (podman's registries.conf) pulls through the peer with the entry appended to an existing file", async () => {
    const skopeo = requireTool('skopeo', 'skopeo');
    const conf = join(dir, 'containers', 'registries.conf');
    await mkdir(join(dir, 'containers'), { recursive: true });
    const operators = '# The operator\'s own file.\nunqualified-search-registries = ["docker.io"]\n\n[[registry]]\nprefix = "quay.io"\nlocation = "quay.io"\n';
    await writeFile(conf, operators);
    await configure(['podman', '--mirror', peer.url, '--registry', UPSTREAM_HOST, '--write', '--config-dir', join(dir, 'containers')]);
    expect((await readFile(conf, 'utf8')).startsWith(operators)).toBe(true);
    const dest = join(dir, 'skopeo-oci');
    // No --src-tls-verify=false: the plain-HTTP mirror works because the written entry says insecure.
    await execFileP(skopeo, ['--registries-conf', conf, 'copy', '--quiet', '--insecure-policy', `docker://${UPSTREAM_HOST}/${IMAGE}:latest`, `oci:${dest}:pulled`], { timeout: 300_000 });
    expect(sha256hex(await readFile(join(dest, 'blobs/sha256', layer.descriptor.digest.slice(7))))).toBe(layer.descriptor.digest);
  });

  it('dockerd starts with the daemon.json merged into an existing one and pulls a Docker Hub name through the peer', async () => {
    const dockerd = requireTool('dockerd', 'docker.io');
    const docker = requireTool('docker', 'docker.io');
    const d = join(dir, 'docker');
    await mkdir(d, { recursive: true });
    const existing = { 'data-root': join(d, 'data'), 'exec-root': join(d, 'exec'), pidfile: join(d, 'docker.pid'), hosts: [`unix://${d}/docker.sock`], iptables: false, bridge: 'none', 'log-level': 'warn' };
    await writeFile(join(d, 'daemon.json'), JSON.stringify(existing, null, 2));
    await configure(['docker', '--mirror', peer.url, '--registry', 'docker.io', '--write', '--config-dir', d]);
    expect(JSON.parse(await readFile(join(d, 'daemon.json'), 'utf8'))).toEqual({ ...existing, 'registry-mirrors': [peer.url] });
    // Anything not on loopback goes to a dead proxy: Docker Hub itself is never reached.
    const env = { ...process.env, HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: '127.0.0.1,localhost' };
    const { child, output } = spawnLogged(dockerd, ['--config-file', join(d, 'daemon.json')], { env });
    const host = ['-H', `unix://${d}/docker.sock`];
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`dockerd exited: ${output()}`);
        return (await execFileP(docker, [...host, 'version'], { timeout: 5_000 }).then(() => true, () => false));
      }, 'dockerd', 60_000);
      const info = await execFileP(docker, [...host, 'info', '--format', '{{json .RegistryConfig.Mirrors}}']);
      expect(JSON.parse(info.stdout)).toEqual([`${peer.url}/`]);
      await execFileP(docker, [...host, 'pull', '--quiet', `${IMAGE.replace(/^library\//, '')}:latest`], { timeout: 300_000, env });
      const inspected = await execFileP(docker, [...host, 'image', 'inspect', '--format', '{{json .RootFS.Layers}}', `${IMAGE.replace(/^library\//, '')}:latest`]);
      expect(JSON.parse(inspected.stdout)).toEqual([layer.diffId]);
    } finally {
      await stopProcess(child, 20_000);
    }
  });
});

function sha256hex(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}
