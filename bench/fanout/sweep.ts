// The fan-out benchmark: one test bed (registry host, supernode host, max-N peer hosts, every link
// shaped), one origin registry, and for each image size S and peer count N every system in turn on
// the same topology and caps. Writes results.json, table.txt and SVG charts into the output directory.
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { Testbed, type HostSpec } from '../testbed/testbed.ts';
import { holdFreedMemory, parseVmMemory, type VmMemoryState } from '../testbed/vm-memory.ts';
import { buildBenchImage, type BenchImage } from './image.ts';
import { lowerBoundSeconds } from './lower-bound.ts';
import { pushImage, startRegistry } from './registry-daemon.ts';
import { renderTable } from './report.ts';
import { runScenario, totalCpuS, type ScenarioResult } from './scenario.ts';
import { writeCharts } from './charts.ts';
import { SYSTEM_NAMES } from './system-names.ts';
import type { FanoutSystem } from './system.ts';
import { BitTorrentSystem } from './systems/bittorrent.ts';
import { DirectSystem } from './systems/direct.ts';
import { PollenSystem } from './systems/pollen.ts';
import { ProxyCacheSystem } from './systems/proxy-cache.ts';


export function makeSystem(name: string): FanoutSystem {
  switch (name) {
    case 'direct':
      return new DirectSystem();
    case 'proxy-cache':
      return new ProxyCacheSystem();
    case 'bittorrent':
      return new BitTorrentSystem();
    case 'pollen':
      return new PollenSystem();
    default:
      throw new Error(`unknown system "${name}" (known: ${SYSTEM_NAMES.join(', ')})`);
  }
}

export interface FanoutOptions {
  peers: readonly number[];
  sizesMiB: readonly number[];
  /** Upload and download cap of every host, Mbit/s. */
  mbit: number;
  /** Upload cap of the registry host (default: mbit). */
  registryMbit?: number | undefined;
  /** System names (see SYSTEM_NAMES), or instances (tests plug in stand-ins). */
  systems: readonly (string | FanoutSystem)[];
  /** MiB of another image pulled through the daemons of systems that serve many pulls, before each measured pull (0: none). */
  warmUpMiB?: number | undefined;
  /** Runs of each (S, N): every system once per run, in an order rotated by one each run (default 1). */
  runs?: number | undefined;
  /**
   * 'hold' (default): the VM keeps its freed memory during the sweep (../testbed/vm-memory.ts), as
   * a host that has run a while does; 'as-is': the VM hands it back to its host as it likes.
   */
  vmMemory?: string | undefined;
  outDir: string;
  repoRoot: string;
  log: (line: string) => void;
}

export interface FanoutReport {
  kind: 'pollen-bench-fanout';
  startedAt: string;
  finishedAt: string;
  machine: { cpus: number; kernel: string; node: string };
  options: { peers: number[]; sizesMiB: number[]; mbit: number; registryMbit: number; systems: string[]; warmUpMiB?: number; runs?: number; vmMemory?: VmMemoryState };
  systems: { name: string; description: string; notRun?: string | undefined }[];
  scenarios: ScenarioResult[];
}

const PEER_NAME_DIGITS = 2;
/** Nice value of the registry and supernode hosts' processes. */
export const SERVER_NICE = -5;

export async function runFanout(opts: FanoutOptions): Promise<FanoutReport> {
  const systems = opts.systems.map((s) => (typeof s === 'string' ? makeSystem(s) : s));
  const registryMbit = opts.registryMbit ?? opts.mbit;
  const runs = opts.runs ?? 1;
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${runs}`);
  const maxN = Math.max(...opts.peers);
  const report: FanoutReport = {
    kind: 'pollen-bench-fanout',
    startedAt: new Date().toISOString(),
    finishedAt: '',
    machine: { cpus: cpus().length, kernel: release(), node: process.version },
    options: { peers: [...opts.peers], sizesMiB: [...opts.sizesMiB], mbit: opts.mbit, registryMbit, systems: systems.map((s) => s.name), ...(opts.warmUpMiB ? { warmUpMiB: opts.warmUpMiB } : {}), ...(runs > 1 ? { runs } : {}) },
    systems: [],
    scenarios: [],
  };
  for (const s of systems) report.systems.push({ name: s.name, description: s.description, notRun: await s.unavailableReason(opts.repoRoot) });
  for (const s of report.systems) if (s.notRun) opts.log(`system ${s.name} will not run: ${s.notRun}`);
  await mkdir(opts.outDir, { recursive: true });

  // The shared servers run ahead of the peer hosts' processes for CPU (see HostSpec.nice): in the
  // 16-peer run at equal priority Pollen's supernode got ~1/33 of two cores and its seed read the
  // registry at a fraction of the link. Every system gets the same (registry, cache, tracker, seeder).
  const specs: HostSpec[] = [
    { name: 'registry', upMbit: registryMbit, downMbit: opts.mbit, nice: SERVER_NICE },
    { name: 'supernode', upMbit: opts.mbit, downMbit: opts.mbit, nice: SERVER_NICE },
  ];
  for (let i = 1; i <= maxN; i++) specs.push({ name: `peer${String(i).padStart(PEER_NAME_DIGITS, '0')}`, upMbit: opts.mbit, downMbit: opts.mbit });
  opts.log(`building the test bed: registry, supernode and ${maxN} peer hosts at ${opts.mbit} Mbit/s (registry upload ${registryMbit} Mbit/s)`);
  const hold = parseVmMemory(opts.vmMemory) === 'as-is' ? undefined : holdFreedMemory();
  report.options.vmMemory = hold?.state ?? 'not asked';
  opts.log(`VM memory: ${hold ? (hold.state === 'held' ? 'held (free page reporting off until the sweep ends)' : hold.state) : 'as the VM keeps it (--vm-memory as-is)'}`);
  const bed = await Testbed.create(specs, { countedSources: ['registry', 'supernode'] }).catch(async (err: unknown) => {
    await hold?.release();
    throw err;
  });
  try {
    const registryHost = bed.host('registry');
    const origin = await startRegistry(bed, registryHost, join(bed.workDir, 'origin-registry'));
    let warmImage: BenchImage | undefined;
    if (opts.warmUpMiB) {
      opts.log(`warm-up image of ${opts.warmUpMiB} MiB: generating and pushing`);
      warmImage = await buildBenchImage(join(bed.workDir, 'images'), opts.warmUpMiB, 'warm');
      await pushImage(bed, registryHost, origin, warmImage);
    }
    for (const sizeMiB of opts.sizesMiB) {
      opts.log(`image of ${sizeMiB} MiB: generating and pushing`);
      const image = await buildBenchImage(join(bed.workDir, 'images'), sizeMiB);
      await pushImage(bed, registryHost, origin, image);
      for (const n of opts.peers) {
        const peers = bed.hosts.filter((h) => h.name.startsWith('peer')).slice(0, n);
        const lowerBoundS = lowerBoundSeconds(image.totalBytes, { registryUpMbit: registryMbit, peerDownMbit: opts.mbit, peerUpMbit: peers.map(() => opts.mbit) });
        // Generous: three times what N direct pulls from the registry would take, plus start-up.
        const pullTimeoutMs = Math.ceil(3 * ((n * image.totalBytes * 8) / (registryMbit * 1e6)) * 1000) + 60_000;
        // The bed drifts within a session (the machine's other load, its memory): each run gives
        // every system its turn, a different one first each time, so the drift spreads over all.
        for (let run = 1; run <= runs; run++) {
          for (let k = 0; k < systems.length; k++) {
            const i = (k + run - 1) % systems.length;
            const system = systems[i]!;
            const notRun = report.systems[i]!.notRun;
            if (notRun && run > 1) continue;
            const result: ScenarioResult = notRun
              ? { system: system.name, n, sizeMiB, imageBytes: image.totalBytes, lowerBoundS, allDoneS: NaN, medianS: NaN, registryEgressBytes: 0, supernodeEgressBytes: 0, registryCpuS: 0, hosts: [], daemons: {}, error: `not run: ${notRun}` }
              : await runScenario({ bed, system, registryHost, supernodeHost: bed.host('supernode'), peers, registryAddr: origin.addr, registryProc: origin.proc, image, lowerBoundS, pullTimeoutMs, repoRoot: opts.repoRoot, logDir: join(opts.outDir, 'logs', ...(runs > 1 ? [`run${run}`] : [])), warmImage });
            if (runs > 1 && !notRun) result.run = run;
            report.scenarios.push(result);
            if (!notRun) opts.log(JSON.stringify(summaryLine(result)));
            await writeFile(join(opts.outDir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
          }
        }
      }
    }
  } finally {
    try {
      await bed.close();
    } finally {
      await hold?.release();
    }
  }
  report.finishedAt = new Date().toISOString();
  await writeFile(join(opts.outDir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
  const table = renderTable(report);
  await writeFile(join(opts.outDir, 'table.txt'), table);
  await writeCharts(report, opts.outDir);
  return report;
}

/** The one-line JSON summary printed as each scenario finishes. */
export function summaryLine(r: ScenarioResult): Record<string, unknown> {
  const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
  return {
    bench: 'fanout',
    system: r.system,
    ...(r.run ? { run: r.run } : {}),
    n: r.n,
    sizeMiB: r.sizeMiB,
    allDoneS: round(r.allDoneS),
    lowerBoundS: round(r.lowerBoundS),
    xLowerBound: round(r.allDoneS / r.lowerBoundS),
    registryEgressXS: round(r.registryEgressBytes / r.imageBytes),
    totalCpuS: round(totalCpuS(r)),
    ...(r.error ? { error: r.error.slice(0, 300) } : {}),
  };
}
