// `pollen pull REF --bundle DIR`: from an image reference to an OCI bundle that `runc run` starts,
// directly from the registry or through a Pollen peer mirror (`--mirror URL`, with `?ns=<host>`).
import { Option, type Command } from 'commander';
import { hostPlatform, parsePlatform } from '../../src/oci/image.ts';
import { formatImageReference, parseImageReference } from '../../src/oci/names.ts';
import { DEFAULT_LAYER_MAX_BYTES, DEFAULT_LAYER_MAX_RATIO, layerLimits } from '../../src/snapshot/layer-limits.ts';
import { join } from 'node:path';
import { createProgress } from './pull-progress.ts';

export const DEFAULT_SNAPSHOT_ROOT = '/var/lib/pollen/snapshotter';

export function snapshotRootOption(): Option {
  return new Option('--root <dir>', 'snapshot store directory').env('POLLEN_SNAPSHOT_ROOT').default(DEFAULT_SNAPSHOT_ROOT);
}

/** The registry's base URL: plain HTTP for loopback hosts (as containerd does) or when asked. */
export function registryBaseUrl(host: string, plainHttp: boolean): string {
  if (host === 'docker.io') return 'https://registry-1.docker.io';
  const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/.test(host);
  return `${plainHttp || loopback ? 'http' : 'https'}://${host}`;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export function registerPull(program: Command): void {
  program
    .command('pull')
    .description('pull an image and unpack it into an OCI runtime bundle (rootfs/ + config.json)')
    .argument('<ref>', 'image reference, e.g. registry.example/ns/app:1.0')
    .argument('[args...]', 'command arguments replacing the image Cmd')
    .requiredOption('--bundle <dir>', 'bundle directory to write')
    .option('--mirror <url>', 'fetch through this Pollen peer mirror (an OCI registry endpoint)')
    .option('--platform <os/arch[/variant]>', 'platform to pick from an index (default: this host)')
    .option('--plain-http', 'talk plain HTTP to the registry (loopback hosts always do)')
    .option('--rich', 'rich container: a real init (tini) is pid 1, reaping zombies and forwarding signals')
    .option('--prestart-hook <cmd>', 'OCI prestart hook (sh -c CMD); repeatable', collect)
    .option('--poststop-hook <cmd>', 'OCI poststop hook (sh -c CMD); repeatable', collect)
    .option('--username <user>', 'registry user name (password from POLLEN_REGISTRY_PASSWORD)')
    .addOption(new Option('--max-layer-bytes <n>', 'largest uncompressed size of one layer, in bytes').env('POLLEN_MAX_LAYER_BYTES').default(String(DEFAULT_LAYER_MAX_BYTES)))
    .addOption(new Option('--max-layer-ratio <n>', 'largest uncompressed/compressed ratio of a layer past its first 8 MiB').env('POLLEN_MAX_LAYER_RATIO').default(String(DEFAULT_LAYER_MAX_RATIO)))
    .addOption(snapshotRootOption())
    .action(async (ref: string, args: string[], o: Record<string, unknown>) => {
      const image = parseImageReference(ref);
      // The pulling and unpacking code is loaded by the command that runs it (start-up of every other command).
      const [{ RegistryClient }, { pullImage }, { SnapshotStore }, { FsContentStore }] = await Promise.all([
        import('../../src/oci/registry-client.ts'),
        import('../../src/snapshot/image-puller.ts'),
        import('../../src/snapshot/snapshot-store.ts'),
        import('../../src/fs-content-store.ts'),
      ]);
      const plainHttp = o.plainHttp === true;
      const password = process.env.POLLEN_REGISTRY_PASSWORD;
      const client = new RegistryClient(
        {},
        {
          baseUrl: typeof o.mirror === 'string' ? o.mirror : registryBaseUrl(image.host, plainHttp),
          ...(typeof o.mirror === 'string' ? { query: { ns: image.host } } : {}),
          ...(typeof o.username === 'string' && password !== undefined ? { credentials: { username: o.username, password } } : {}),
        },
      );
      const limits = layerLimits({ maxBytes: Number(o.maxLayerBytes), maxRatio: Number(o.maxLayerRatio) });
      const snapshots = await SnapshotStore.open(String(o.root));
      const content = await FsContentStore.open(join(String(o.root), 'content'));
      const progress = createProgress(process.stderr);
      const ac = new AbortController();
      const stop = (): void => ac.abort(new Error('interrupted'));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const r = await pullImage(
          { client, snapshots, content, onEvent: progress.onEvent },
          {
            name: image.name,
            reference: image.digest ?? image.tag ?? 'latest',
            platform: typeof o.platform === 'string' ? parsePlatform(o.platform) : hostPlatform(),
            bundleDir: String(o.bundle),
            imageName: formatImageReference(image),
            ...(args.length ? { args } : {}),
            rich: o.rich === true,
            prestartHooks: (o.prestartHook as string[] | undefined) ?? [],
            poststopHooks: (o.poststopHook as string[] | undefined) ?? [],
            layerLimits: limits,
            signal: ac.signal,
          },
        );
        progress.finish();
        process.stdout.write(`${JSON.stringify({ bundle: String(o.bundle), manifest: r.manifestDigest, chainId: r.chainId, unpacked: r.layersUnpacked, reused: r.layersReused, warnings: r.warnings.length })}\n`);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
