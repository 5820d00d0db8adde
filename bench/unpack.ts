// Unpack benchmark: time from nothing to a runnable bundle for an image of several gzip layers
// (~300 MiB uncompressed), side by side in one run:
//   pollen      `pollen pull` (library, in process): download + unpack pipelined, snapshots, bundle
//   download    the same layer downloads alone (3 at once, to files), as Pollen fetches them
//   unpack      Pollen's unpack alone from those local files (snapshots + bundle copy)
//   skopeo+umoci  `skopeo copy docker://... oci:DIR` then `umoci unpack`
//   tar -xzf    GNU tar of the same local layer files, one after another
// Overlap: pollen / max(download, unpack) should be <= 1.15 (download and unpack overlap).
// Usage: npm run bench:unpack [-- --size-mib 300 --layers 4 --rounds 1 --concurrency 3]
import { createReadStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import type { Digest } from '../src/digest.ts';
import { FsContentStore } from '../src/fs-content-store.ts';
import { chainIds } from '../src/oci/image.ts';
import { RegistryClient } from '../src/oci/registry-client.ts';
import { applyLayer } from '../src/snapshot/apply-layer.ts';
import { writeBundle } from '../src/snapshot/bundle-writer.ts';
import { decompress } from '../src/snapshot/decompress.ts';
import { DEFAULT_DOWNLOAD_CONCURRENCY, pullImage } from '../src/snapshot/image-puller.ts';
import { SnapshotStore } from '../src/snapshot/snapshot-store.ts';
import { parseImageConfig } from '../src/oci/image.ts';
import { buildTar, makeLayer, OciLayout, seededBytes, type BuiltLayer, type TarEntry } from '../test/helpers/images.ts';
import { TestRegistry } from '../test/helpers/registry.ts';
import { execFileP, requireTool } from '../test/helpers/tools.ts';

const MiB = 1024 * 1024;

/** A layer of many files whose content compresses about like real binaries and text (~2:1). */
async function benchLayer(seed: string, bytes: number): Promise<BuiltLayer> {
  const entries: TarEntry[] = [{ type: 'directory', name: `${seed}/`, mode: 0o755 }];
  let left = bytes;
  for (let i = 0; left > 0; i++) {
    const size = Math.min(left, 64 * 1024 * (1 + (i % 32)));
    // Random bytes as hex: 4 bits of entropy per byte, so gzip roughly halves it.
    const content = Buffer.from(seededBytes(`${seed}-${i}`, Math.ceil(size / 2)).toString('hex').slice(0, size));
    entries.push({ type: 'file', name: `${seed}/f${i}.bin`, content, mode: 0o644 });
    left -= size;
  }
  return makeLayer(await buildTar(entries), 'gzip');
}

const CLOCK_TICKS_PER_S = 100;

/** CPU seconds used so far by this process and its waited-for children (cp, tar, zstd...), and the registry. */
function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of ['self', ...pids.map(String)]) {
    // Fields after the `(comm)`: utime, stime, cutime, cstime are the 12th-15th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return ticks / CLOCK_TICKS_PER_S;
}

let cpuPids: number[] = [];
const cpu: Record<string, number[]> = {};

async function timed<T>(name: string, fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  // Every phase starts with no dirty pages left by the one before (writeback throttling would
  // otherwise slow whichever phase comes next).
  await execFileP('sync', []);
  const c0 = cpuSeconds(cpuPids);
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  (cpu[name] ??= []).push(cpuSeconds(cpuPids) - c0);
  return { ms, value };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '300' }, layers: { type: 'string', default: '4' }, rounds: { type: 'string', default: '1' }, concurrency: { type: 'string', default: String(DEFAULT_DOWNLOAD_CONCURRENCY) } } });
  const concurrency = Number(values.concurrency);
  const sizeMiB = Number(values['size-mib']);
  const nLayers = Number(values.layers);
  const rounds = Number(values.rounds);
  const skopeo = requireTool('skopeo', 'skopeo');
  const umoci = requireTool('umoci', 'umoci');
  const tar = requireTool('tar', 'tar');
  const registry = await TestRegistry.start();
  const dir = await mkdtemp(join(tmpdir(), 'pollen-bench-unpack-'));
  try {
    process.stderr.write(`generating ${sizeMiB} MiB in ${nLayers} gzip layers...\n`);
    const layers: BuiltLayer[] = [];
    for (let i = 0; i < nLayers; i++) layers.push(await benchLayer(`layer${i}`, Math.floor((sizeMiB * MiB) / nLayers)));
    const layout = new OciLayout(join(dir, 'img'));
    layout.tag(layout.addImage(layers, { config: { Cmd: ['/bin/true'] } }), 'v1');
    await layout.save();
    await registry.push(layout.dir, 'v1', 'bench/unpack:v1');
    const compressed = layers.reduce((n, l) => n + l.blob.length, 0);
    const client = new RegistryClient({}, { baseUrl: registry.url });
    const platform = { os: 'linux', architecture: 'amd64' };
    // The registry's CPU counts too: it shares the two cores with the unpack.
    cpuPids = [(registry as unknown as { child: { pid: number } }).child.pid];
    // Warm-up (JIT, the registry's page cache), not timed.
    {
      const warm = join(dir, 'warm');
      const snapshots = await SnapshotStore.open(join(warm, 'store'));
      const content = await FsContentStore.open(join(warm, 'store', 'content'));
      await pullImage({ client, snapshots, content }, { name: 'bench/unpack', reference: 'v1', platform, bundleDir: join(warm, 'bundle'), imageName: 'bench' });
      await rm(warm, { recursive: true, force: true });
    }
    const rows: Record<string, number[]> = { pollen: [], download: [], unpack: [], skopeoUmoci: [], skopeo: [], umoci: [], tar: [] };

    for (let r = 0; r < rounds; r++) {
      const round = join(dir, `r${r}`);
      await mkdir(round);
      // Pollen, end to end, fresh store.
      const store = join(round, 'pollen-store');
      const snapshots = await SnapshotStore.open(store);
      const content = await FsContentStore.open(join(store, 'content'));
      rows.pollen!.push((await timed('pollen', () => pullImage({ client, snapshots, content }, { name: 'bench/unpack', reference: 'v1', platform, bundleDir: join(round, 'pollen-bundle'), imageName: 'bench', concurrency }))).ms);

      // Download alone: the same blobs, 3 at once, to files.
      const blobDir = join(round, 'blobs');
      await mkdir(blobDir);
      rows.download!.push((await timed('download', async () => {
        const queue = [...layers];
        await Promise.all([0, 1, 2].map(async () => {
          for (let l = queue.shift(); l; l = queue.shift()) {
            const res = await client.getBlob('bench/unpack', l.descriptor.digest as Digest);
            await pipeline(res.body, createWriteStream(join(blobDir, l.descriptor.digest.slice(7))));
          }
        }));
      })).ms);

      // Unpack alone: Pollen's applier from the local files into a fresh store, then the bundle.
      const store2 = await SnapshotStore.open(join(round, 'unpack-store'));
      const ids = chainIds(layers.map((l) => l.diffId as Digest));
      rows.unpack!.push((await timed('unpack', async () => {
        for (const [i, l] of layers.entries()) {
          const active = await store2.prepare(i > 0 ? ids[i - 1] : undefined);
          const res = await applyLayer(active.dir, decompress(createReadStream(join(blobDir, l.descriptor.digest.slice(7))), 'gzip'));
          if (res.diffId !== l.diffId) throw new Error('bench: diffID mismatch');
          await active.commit({ chainId: ids[i]!, parent: i > 0 ? ids[i - 1] : undefined, diffId: res.diffId, size: res.fileBytes });
        }
        const image = parseImageConfig(Buffer.from(JSON.stringify({ config: { Cmd: ['/bin/true'] }, rootfs: { diff_ids: layers.map((l) => l.diffId) } })));
        await writeBundle({ snapshots: store2 }, { bundleDir: join(round, 'unpack-bundle'), chainId: ids[ids.length - 1]!, image, imageName: 'bench' });
      })).ms);

      // skopeo copy + umoci unpack.
      const oci = join(round, 'oci');
      const sk = await timed('skopeo', () => execFileP(skopeo, ['copy', '--quiet', '--src-tls-verify=false', '--insecure-policy', `docker://${registry.host}/bench/unpack:v1`, `oci:${oci}:v1`]));
      const um = await timed('umoci', () => execFileP(umoci, ['unpack', '--image', `${oci}:v1`, join(round, 'umoci-bundle')]));
      rows.skopeo!.push(sk.ms);
      rows.umoci!.push(um.ms);
      rows.skopeoUmoci!.push(sk.ms + um.ms);

      // tar -xzf of the same layer files, in order.
      const tarRoot = join(round, 'tar-rootfs');
      await mkdir(tarRoot);
      rows.tar!.push((await timed('tar', async () => {
        for (const l of layers) await execFileP(tar, ['-xzf', join(blobDir, l.descriptor.digest.slice(7)), '-C', tarRoot]);
      })).ms);
      await rm(round, { recursive: true, force: true });
    }

    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, Math.round(med(v))])) as Record<string, number>;
    const overlap = m.pollen! / Math.max(m.download!, m.unpack!);
    const c = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Math.round(med(v) * 100) / 100])) as Record<string, number>;
    // Two cores: download and unpack together cannot take less than half their CPU seconds.
    const boundMs = Math.max(m.download!, m.unpack!, ((c.download! + c.unpack!) / 2) * 1000);
    const result = {
      bench: 'unpack',
      sizeMiB,
      layers: nLayers,
      concurrency,
      compressedMiB: Math.round((compressed / MiB) * 10) / 10,
      rounds,
      ms: m,
      overlapRatio: Math.round(overlap * 100) / 100,
      overlapOk: overlap <= 1.15,
      cpuSeconds: c,
      twoCoreBoundMs: Math.round(boundMs),
      pollenVsTwoCoreBound: Math.round((m.pollen! / boundMs) * 100) / 100,
      // Wall times are only comparable on an otherwise idle machine: the 1-minute load at the end.
      loadAvg1m: Math.round(loadavg()[0]! * 10) / 10,
      pollenVsSkopeoUmoci: Math.round((m.pollen! / m.skopeoUmoci!) * 100) / 100,
      pollenVsTar: Math.round((m.pollen! / m.tar!) * 100) / 100,
      unpackVsTar: Math.round((m.unpack! / m.tar!) * 100) / 100,
    };
    process.stdout.write(`${JSON.stringify(result)}\n\n`);
    const line = (name: string, ms: number, note = ''): string => `${name.padEnd(30)} ${String(ms).padStart(8)} ms  ${note}\n`;
    process.stdout.write(`image: ${sizeMiB} MiB in ${nLayers} gzip layers (${result.compressedMiB} MiB compressed), median of ${rounds} round(s); load average ${result.loadAvg1m} on ${availableParallelism()} cores\n`);
    process.stdout.write(line('pollen pull (to bundle)', m.pollen!, `${(sizeMiB / (m.pollen! / 1000)).toFixed(0)} MiB/s`));
    process.stdout.write(line('  download alone', m.download!, `cpu ${c.download} s (node + registry)`));
    process.stdout.write(line('  unpack alone (+bundle copy)', m.unpack!, `cpu ${c.unpack} s`));
    process.stdout.write(line('  two-core bound for both', result.twoCoreBoundMs, 'max(download, unpack, (cpu download + cpu unpack) / 2 cores)'));
    process.stdout.write(line('skopeo copy + umoci unpack', m.skopeoUmoci!, `skopeo ${m.skopeo} + umoci ${m.umoci}`));
    process.stdout.write(line('tar -xzf of the layers', m.tar!));
    process.stdout.write(`overlap: pollen / max(download, unpack) = ${result.overlapRatio} (${result.overlapOk ? 'ok' : 'NOT'} <= 1.15); pollen / two-core bound = ${result.pollenVsTwoCoreBound}; pollen cpu ${c.pollen} s\n`);
    process.stdout.write(`pollen / (skopeo+umoci) = ${result.pollenVsSkopeoUmoci}; pollen / tar = ${result.pollenVsTar}; pollen unpack / tar = ${result.unpackVsTar}\n`);
  } finally {
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
