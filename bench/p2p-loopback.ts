// P2P fan-out on loopback: 8 `pollen peer` processes with a `pollen supernode` pull one image
// (256 MiB, 3 layers) at once with skopeo, against 8 skopeo pulls straight from the registry, side
// by side in one run. Figures: time until all are done, and the blob bytes the registry sent (as
// a multiple of the image size). On one machine every peer shares the same CPUs and disk, so the
// time is not a fan-out speed-up; the registry bytes are the point. Both sides are CPU-bound on a
// two-core machine, so each also reports the CPU seconds the machine spent (all processes, from
// /proc/stat) and of them the registry's (direct) or Pollen's daemons' (P2P); the rest is skopeo and
// the kernel work no process is charged for. Each side writes into touched memory (touchMemory),
// which a VM that hands freed memory back to its host keeps for the run (testbed/vm-memory.ts).
// Usage: npm run bench:p2p [-- --size-mib 256 --peers 8 --vm-memory as-is]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { skopeoPullViaMirror } from '../test/helpers/clients.ts';
import { committedSources, pushRandomImage, startP2pPeer, startSupernodeProcess } from '../test/helpers/p2p-cluster.ts';
import type { PollenProcess } from '../test/helpers/pollen.ts';
import { TestRegistry } from '../test/helpers/registry.ts';
import { execFileP, requireTool } from '../test/helpers/tools.ts';
import { cpuDetail, machineBusySeconds } from './testbed/process-stats.ts';
import { touchMemory } from './testbed/touch-memory.ts';
import { holdFreedMemory, parseVmMemory } from './testbed/vm-memory.ts';
import { timed } from './timed.ts';

const MiB = 1 << 20;

function cpuOf(pids: readonly (number | undefined)[]): number {
  let s = 0;
  for (const pid of pids) {
    const d = pid === undefined ? undefined : cpuDetail(pid);
    if (d) s += d.userS + d.systemS;
  }
  return s;
}

/** Wall ms of run, the machine's busy CPU seconds over it, and those of the processes pids. */
async function measured(pids: readonly (number | undefined)[], run: () => Promise<unknown>): Promise<{ ms: number; machineCpuS: number; cpuS: number }> {
  const machine0 = machineBusySeconds();
  const own0 = cpuOf(pids);
  const ms = await timed(run);
  return { ms, machineCpuS: machineBusySeconds() - machine0, cpuS: cpuOf(pids) - own0 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '256' }, peers: { type: 'string', default: '8' }, 'vm-memory': { type: 'string', default: 'hold' } } });
  const sizeMiB = Number(values['size-mib']);
  const n = Number(values.peers);
  const vmMemory = parseVmMemory(values['vm-memory']);
  const skopeo = requireTool('skopeo', 'skopeo');
  const hold = vmMemory === 'hold' ? holdFreedMemory() : undefined;
  const registry = await TestRegistry.start();
  const dir = await mkdtemp(join(tmpdir(), 'pollen-bench-p2p-'));
  const procs: PollenProcess[] = [];
  try {
    const half = Math.floor(sizeMiB / 2);
    const quarter = Math.floor((sizeMiB - half) / 2);
    const image = await pushRandomImage(registry, 'bench/p2p', [half * MiB, quarter * MiB, (sizeMiB - half - quarter) * MiB]);

    // Baseline: n clients straight from the registry, at once.
    await touchMemory(dir, n * image.size);
    let before = registry.blobBytesSent();
    const direct = await measured([registry.pid], () =>
      Promise.all(
        Array.from({ length: n }, (_, i) =>
          execFileP(skopeo, ['copy', '--quiet', '--insecure-policy', '--src-tls-verify=false', `docker://${registry.host}/${image.ref}`, `oci:${join(dir, `direct-${i}`)}:pulled`], { maxBuffer: 16 << 20 }),
        ),
      ),
    );
    const directMs = direct.ms;
    const directBytes = registry.blobBytesSent() - before;
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);

    // Pollen: a supernode and n peers, each client pulling through its own peer, at once.
    const supernode = await startSupernodeProcess(registry, ['--log-level', 'info']);
    procs.push(supernode);
    const peers = await Promise.all(Array.from({ length: n }, () => startP2pPeer(registry, supernode.url, ['--log-level', 'info'])));
    procs.push(...peers);
    // What the pull keeps: each peer's store and its client's copy, and the seed's store.
    await touchMemory(dir, (2 * n + 1) * image.size);
    before = registry.blobBytesSent();
    const p2p = await measured(procs.map((p) => p.pid), () => Promise.all(peers.map((p, i) => skopeoPullViaMirror(p.host, image.ref, join(dir, `p2p-${i}`)))));
    const p2pMs = p2p.ms;
    const p2pBytes = registry.blobBytesSent() - before;
    const sources = peers.map((p) => committedSources(p.output()));
    const logFile = join(tmpdir(), 'pollen-bench-p2p.log');
    await writeFile(logFile, procs.map((p, i) => p.output().split('\n').map((l) => `[${i}] ${l}`).join('\n')).join('\n'));
    const sum = (k: 'peer' | 'seed' | 'upstream') => sources.reduce((a, s) => a + s[k], 0);

    const result = {
      bench: 'p2p-loopback',
      sizeMiB,
      vmMemory: hold?.state ?? 'not asked',
      imageBytes: image.size,
      peers: n,
      p2pAllDoneMs: Math.round(p2pMs),
      directAllDoneMs: Math.round(directMs),
      timeRatio: p2pMs / directMs,
      p2pRegistryBytes: p2pBytes,
      directRegistryBytes: directBytes,
      p2pRegistryXImage: p2pBytes / image.size,
      directRegistryXImage: directBytes / image.size,
      bytesFromPeers: sum('peer'),
      bytesFromSeed: sum('seed'),
      bytesFromUpstream: sum('upstream'),
      p2pMachineCpuS: p2p.machineCpuS,
      directMachineCpuS: direct.machineCpuS,
      p2pDaemonsCpuS: p2p.cpuS,
      directRegistryCpuS: direct.cpuS,
    };
    console.log(JSON.stringify(result));
    const f = (x: number, d = 1) => x.toFixed(d);
    console.log(`\nP2P loopback: ${n} clients, ${sizeMiB} MiB image (3 layers), all at once, one machine; the VM's freed memory: ${result.vmMemory}\n`);
    console.log('| measure                     | pollen P2P | registry direct | ratio  |');
    console.log('| --------------------------- | ---------- | --------------- | ------ |');
    console.log(`| time until all done (s)     | ${f(p2pMs / 1000).padStart(10)} | ${f(directMs / 1000).padStart(15)} | ${f(result.timeRatio, 2).padStart(5)}x |`);
    console.log(`| machine CPU s (all)         | ${f(p2p.machineCpuS).padStart(10)} | ${f(direct.machineCpuS).padStart(15)} | ${f(p2p.machineCpuS / direct.machineCpuS, 2).padStart(5)}x |`);
    console.log(`| of it Pollen / registry     | ${f(p2p.cpuS).padStart(10)} | ${f(direct.cpuS).padStart(15)} |        |`);
    console.log(`| registry blob bytes (x img) | ${f(result.p2pRegistryXImage, 2).padStart(10)} | ${f(result.directRegistryXImage, 2).padStart(15)} | ${f(p2pBytes / Math.max(1, directBytes), 2).padStart(5)}x |`);
    console.log(`\n(daemon logs: ${logFile})`);
    console.log(`\nP2P bytes by source: peers ${f(result.bytesFromPeers / MiB, 0)} MiB, seed ${f(result.bytesFromSeed / MiB, 0)} MiB, upstream ${f(result.bytesFromUpstream / MiB, 0)} MiB`);
  } finally {
    for (const p of procs) await p.stop().catch(() => {});
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
    await hold?.release();
  }
}

await main();
