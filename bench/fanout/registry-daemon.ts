// CNCF distribution (Debian's docker-registry) inside a test-bed host: the origin registry, or a
// pull-through cache of it (`proxy: { remoteurl }`, the baseline every registry operator knows).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findTool } from '../testbed/exec.ts';
import type { NsProcess } from '../testbed/ns-process.ts';
import type { Host, Testbed } from '../testbed/testbed.ts';
import type { BenchImage } from './image.ts';
import { waitHttp } from './ns-tools.ts';

export const REGISTRY_PORT = 5000;

export interface RegistryDaemon {
  proc: NsProcess;
  /** host:port as other hosts reach it. */
  addr: string;
}

export async function startRegistry(bed: Testbed, host: Host, dir: string, options: { proxyRemote?: string } = {}): Promise<RegistryDaemon> {
  const bin = findTool('docker-registry', 'docker-registry');
  await mkdir(dir, { recursive: true });
  const addr = `${host.ip}:${REGISTRY_PORT}`;
  const proxy = options.proxyRemote ? `proxy: { remoteurl: ${options.proxyRemote} }\n` : '';
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    `version: 0.1\nlog: { level: warn, accesslog: { disabled: true } }\n` +
      `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} }, delete: { enabled: true } }\n` +
      `http: { addr: ${addr} }\n${proxy}`,
  );
  const proc = bed.spawn(host, bin, ['serve', config]);
  try {
    await waitHttp(bed, host, `http://${addr}/v2/`);
  } catch (err) {
    await proc.stop();
    throw new Error(`docker-registry did not start on ${host.name}: ${(err as Error).message}\n${proc.output().slice(-2000)}`);
  }
  return { proc, addr };
}

/** Pushes the image from its OCI layout into the registry, from inside the registry's host (over its loopback, unshaped). */
export async function pushImage(bed: Testbed, host: Host, registry: RegistryDaemon, image: BenchImage): Promise<void> {
  const skopeo = findTool('skopeo', 'skopeo');
  const r = await bed.runTimed(host, skopeo, [
    'copy',
    '--quiet',
    '--insecure-policy',
    '--dest-tls-verify=false',
    `oci:${image.layoutDir}:${image.tag}`,
    `docker://${registry.addr}/${image.repo}:${image.tag}`,
  ]);
  if (r.exitCode !== 0) throw new Error(`pushing the benchmark image failed: ${r.output.slice(-2000)}`);
}
