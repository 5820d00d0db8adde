// `pollen bench fanout`: the multi-host fan-out benchmark (needs root: it builds network namespaces).
// `pollen bench sim`: the same question for 100 to 10,000 peers, simulated with the real scheduler.
import { join } from 'node:path';
import type { Command } from 'commander';
import { SYSTEM_NAMES } from '../../bench/fanout/system-names.ts';
import { packageRoot } from '../package-root.ts';

const REPO_ROOT = packageRoot(import.meta.dirname);

/** The benchmarks need a checkout: the npm package ships the daemons and the CLI, not bench/. */
async function benchModule<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && /[/\\]bench[/\\]/.test((err as Error).message)) {
      throw new Error(`\`pollen bench\` runs from a checkout of the Pollen repository (npm ci && npm run build): this installation has no benchmarks (${(err as Error).message})`);
    }
    throw err;
  }
}

/** The default sweep: finishes in well under 10 minutes on two cores (see bench/README.md). */
export const DEFAULT_PEERS = '2,4,8';
export const DEFAULT_SIZES_MIB = '64';
export const DEFAULT_MBIT = '100';

function numberList(flag: string, value: string): number[] {
  const xs = value.split(',').map((v) => Number(v.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`--${flag} takes a comma-separated list of positive integers, got "${value}"`);
  return xs;
}

function positive(flag: string, value: string): number {
  const x = Number(value);
  if (!(x > 0)) throw new Error(`--${flag} takes a positive number, got "${value}"`);
  return x;
}

function positiveInteger(flag: string, value: string): number {
  const x = Number(value);
  if (!Number.isInteger(x) || x < 1) throw new Error(`--${flag} takes a positive integer, got "${value}"`);
  return x;
}

function apiLinksOf(value: string): 'shared' | 'own' {
  if (value !== 'shared' && value !== 'own') throw new Error(`--api-links takes 'shared' or 'own', got "${value}"`);
  return value;
}

function nonNegative(flag: string, value: string): number {
  const x = Number(value);
  if (!(x >= 0) || !Number.isFinite(x)) throw new Error(`--${flag} takes a number of 0 or more, got "${value}"`);
  return x;
}

/**
 * A simulated sync on the supernode's real route, beyond the scheduler's own work. A simulated peer
 * has one task, so each of its syncs is a request of its own: `npm run bench:sync` (TLS, 96 peers,
 * the two-core machine of 2026-12-01) measured 64-68 CPU us for a request that schedules nothing
 * (a heartbeat) and 160-167 us for one carrying 4 task syncs, i.e. ~24 us per task sync past the
 * request, ~10 of it not the scheduler's (bench sim measures 5-16 us for the scheduler): 66 + 10.
 */
const DEFAULT_ROUTE_US_PER_SYNC = 75;
/**
 * npm run bench:sync, four runs on a quiet machine: a batch of 4 task syncs cost the supernode
 * 105-144 us as an HTTP request and 61-79 us as a channel frame (0.51-0.73 x), a heartbeat
 * (the route's cost, nearly) 56-74 us; with ~12 us a task sync, the channel's own part is ~15-30
 * us against the route's ~60: the higher end here.
 */
const DEFAULT_CHANNEL_US_PER_SYNC = 30;

/**
 * --cores with --peer-ns-per-byte <rx,tx>, --host-cpu-s and --contention: the shared CPU of the
 * simulation (bench/sim/pollen-swarm.ts), as `--against` fits it to a bed (agreement.json's fitAll).
 */
function simCpu(cores: number, nsPerByte: string, hostCpuS: number, contention: number): { cores: number; peerReceiveNsPerByte: number; peerSendNsPerByte: number; hostCpuS: number; contention: number } {
  const xs = nsPerByte.split(',').map((v) => Number(v.trim()));
  const [rx, tx] = xs;
  if (xs.length !== 2 || !(rx! >= 0 && tx! >= 0 && Number.isFinite(rx! + tx!))) throw new Error(`--peer-ns-per-byte takes two numbers of 0 or more, received and sent, e.g. 14.9,5.0; got "${nsPerByte}"`);
  if (!(contention < 1)) throw new Error(`--contention takes a number of 0 or more and below 1, got ${contention}`);
  return { cores, peerReceiveNsPerByte: rx!, peerSendNsPerByte: tx!, hostCpuS, contention };
}

/** --layers: shares of S (as the bed's image: each layer that share of S), or 'bed' for the fan-out image's own. */
async function simLayerShares(value: string): Promise<readonly number[]> {
  if (value.trim() === 'bed') return (await benchModule(() => import('../../bench/fanout/layers.ts'))).LAYER_SHARES;
  const xs = value.split(',').map((v) => Number(v.trim()));
  if (xs.some((x) => !(x > 0) || !Number.isFinite(x)) || xs.reduce((a, x) => a + x, 0) > 1 + 1e-9) {
    throw new Error(`--layers takes 'bed' or comma-separated shares of S, each above 0 and together at most 1 (e.g. 0.4,0.3,0.2,0.1), got "${value}"`);
  }
  return xs;
}

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks that print figures (JSON lines and a table) and write charts');
  bench
    .command('fanout')
    .description('time for N hosts (network namespaces with shaped links) to all pull an image, against T* and the baselines; needs root')
    .option('--peers <list>', 'peer host counts N to sweep, e.g. 2,4,8,16,24', DEFAULT_PEERS)
    .option('--sizes <list>', 'image sizes S in MiB to sweep, e.g. 64,256,1024', DEFAULT_SIZES_MIB)
    .option('--mbit <rate>', 'upload and download cap of every host, Mbit/s', DEFAULT_MBIT)
    .option('--registry-mbit <rate>', 'upload cap of the registry host, Mbit/s (default: --mbit)')
    .option('--systems <list>', `systems to run, in order (${SYSTEM_NAMES.join(', ')})`, SYSTEM_NAMES.join(','))
    .option('--warm-up <mib>', 'before each measured pull, pull another image of this size through the daemons of systems that serve many pulls (pollen, proxy-cache): a long-running daemon, not a fresh one', '0')
    .option('--runs <k>', 'runs of each (S, N): every system once per run, a different one first each time; the table adds medians', '1')
    .option('--vm-memory <how>', "'hold': a VM that hands freed memory back to its host (free page reporting) keeps it during the sweep, as a host that has run a while; 'as-is': it does not", 'hold')
    .option('--out <dir>', 'results directory (default: results/fanout-<timestamp>)')
    .action(async (o: { peers: string; sizes: string; mbit: string; registryMbit?: string; systems: string; warmUp: string; runs: string; vmMemory: string; out?: string }) => {
      const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
      const outDir = o.out ?? join(REPO_ROOT, 'results', `fanout-${stamp}`);
      // Loaded on demand: the benchmark pulls in image generation and the test bed.
      const { runFanout } = await benchModule(() => import('../../bench/fanout/sweep.ts'));
      const { renderTable } = await benchModule(() => import('../../bench/fanout/report.ts'));
      const report = await runFanout({
        peers: numberList('peers', o.peers),
        sizesMiB: numberList('sizes', o.sizes),
        mbit: positive('mbit', o.mbit),
        registryMbit: o.registryMbit === undefined ? undefined : positive('registry-mbit', o.registryMbit),
        systems: o.systems.split(',').map((s) => s.trim()).filter(Boolean),
        warmUpMiB: o.warmUp === '0' ? 0 : positive('warm-up', o.warmUp),
        runs: positiveInteger('runs', o.runs),
        vmMemory: o.vmMemory,
        outDir,
        repoRoot: REPO_ROOT,
        log: (line) => process.stdout.write(`${line}\n`),
      });
      process.stdout.write(`\n${renderTable(report)}\nresults: ${outDir} (results.json, table.txt, *.svg; see bench/README.md)\n`);
    });
  bench
    .command('sim')
    .description('simulated fan-out to 100-10,000 peers with the real supernode scheduler: all-done time against N and T*, scheduler cost and memory')
    .option('--peers <list>', 'peer counts N to sweep', '100,1000,10000')
    .option('--size <mib>', 'blob size S in MiB', '256')
    .option('--mbit <rate>', 'upload and download cap of every peer, Mbit/s', DEFAULT_MBIT)
    .option('--origin-mbit <rate>', 'upload cap of the origin (registry and seed), Mbit/s (default: --mbit)')
    .option('--piece-mib <mib>', 'piece size in MiB (default: the layout the supernode gives a blob with N live peers: 128 KiB from --small-pieces-from, else 512 KiB; doubled up to 1,000 pieces)')
    .option('--layers <shares>', "how S is split into the blobs every peer pulls at once: shares of S such as 0.4,0.3,0.2,0.1, or 'bed' for the fan-out bed's image (default: one blob; with --against: 'bed')")
    .option('--max-sim-s <s>', 'stop a run after this many simulated seconds (peers not done are reported as unfinished)', '600')
    .option('--scan-limit <n>', "the scheduler's scanLimit (default: the supernode's)")
    .option('--offer-interval-ms <ms>', "the scheduler's offerIntervalMs: parents offered to a peer at most this often (default: the supernode's, every sync)")
    .option('--sync-rate <n>', "the supernode's --sync-rate: syncs per second it paces its peers to (0: no pacing; default: the supernode's)")
    .option('--sync-answer-rate <bytes>', "the supernode's --sync-answer-rate in bytes a second: what its sync answers may take of its uplink (0: not counted; default: the supernode's)")
    .option('--api-links <where>', "where the supernode API's requests and answers queue: 'shared', on the seed host's links before its pieces and its stream from the registry (Pollen's supernode is both, on one host), or 'own', links of their own at --origin-mbit (a scheduler apart from its seed, as Dragonfly 2 runs them)", 'shared')
    .option('--seed <n>', 'seed of the random start jitter and latencies', '1')
    .option('--cores <n>', "cores the peers' processes share (default: CPU is free; the fan-out bed has 2)")
    .option('--peer-ns-per-byte <rx,tx>', "a peer's CPU ns per byte received and sent, with --cores", '24,8')
    .option('--host-cpu-s <s>', "CPU s a host's pull costs whatever its size, run on the shared cores before its pull, with --cores", '0')
    .option('--contention <x>', 'how much cheaper a byte gets on crowded cores, with --cores: asked L > 1 times the cores, a byte costs L^-x (0 to below 1)', '0')
    .option('--route-us-per-sync <us>', "CPU us a simulated HTTP request (a busy peer's heartbeat, a registration, a creation) costs the supernode beyond the scheduler (TLS, parsing, validation, the token, JSON), added in the '+route' columns; npm run bench:sync measures it", String(DEFAULT_ROUTE_US_PER_SYNC))
    .option('--channel-us-per-sync <us>', 'the same for a batch of syncs on a sync channel (one frame, no HTTP)', String(DEFAULT_CHANNEL_US_PER_SYNC))
    .option('--against <results.json>', "hold the model against a fan-out bed run (pollen bench fanout's results.json): simulate each of its Pollen rows with its links, its cores and a CPU term fitted from its other rows (a cost per host, per byte and the crowding discount; agreement.json's fitAll has the term of all rows, for --cores, --peer-ns-per-byte, --host-cpu-s and --contention), and print both all-done times (the other options but --seed, --max-sim-s and --out do not apply)")
    .option('--out <dir>', 'results directory (default: results/sim-<timestamp>)')
    .action(async (o: { peers: string; size: string; mbit: string; originMbit?: string; pieceMib?: string; layers?: string; scanLimit?: string; offerIntervalMs?: string; syncRate?: string; syncAnswerRate?: string; apiLinks: string; maxSimS: string; seed: string; cores?: string; peerNsPerByte: string; hostCpuS: string; contention: string; routeUsPerSync: string; channelUsPerSync: string; against?: string; out?: string }) => {
      const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
      const outDir = o.out ?? join(REPO_ROOT, 'results', `sim-${stamp}`);
      const layerShares = o.layers === undefined ? undefined : await simLayerShares(o.layers);
      if (o.against !== undefined) {
        const { readBedFile, runAgreement, renderAgreementTable } = await benchModule(() => import('../../bench/sim/agreement.ts'));
        const bed = await readBedFile(o.against);
        const rows = await runAgreement({ bed, ...(layerShares ? { layerShares } : {}), seed: Number(o.seed), maxSimS: positive('max-sim-s', o.maxSimS), outDir, log: (line) => process.stdout.write(`${line}\n`) });
        process.stdout.write(`\n${renderAgreementTable(rows)}\nresults: ${outDir} (agreement.json, agreement.txt; see bench/README.md)\n`);
        return;
      }
      if (o.cores === undefined && (nonNegative('host-cpu-s', o.hostCpuS) > 0 || nonNegative('contention', o.contention) > 0)) throw new Error('--host-cpu-s and --contention share the cores of --cores among the peers: give --cores too');
      const { runSimBench, renderSimTable } = await benchModule(() => import('../../bench/sim/sim-bench.ts'));
      const mbit = positive('mbit', o.mbit);
      const rows = await runSimBench({
        peers: numberList('peers', o.peers),
        sizeMiB: positive('size', o.size),
        mbit,
        originMbit: o.originMbit === undefined ? mbit : positive('origin-mbit', o.originMbit),
        pieceMiB: o.pieceMib === undefined ? undefined : positive('piece-mib', o.pieceMib),
        ...(layerShares ? { layerShares } : {}),
        scheduler: {
          ...(o.scanLimit === undefined ? {} : { scanLimit: numberList('scan-limit', o.scanLimit)[0]! }),
          ...(o.offerIntervalMs === undefined ? {} : { offerIntervalMs: positive('offer-interval-ms', o.offerIntervalMs) }),
        },
        ...(o.syncRate === undefined ? {} : { syncRate: nonNegative('sync-rate', o.syncRate) }),
        ...(o.syncAnswerRate === undefined ? {} : { syncAnswerRate: nonNegative('sync-answer-rate', o.syncAnswerRate) }),
        apiLinks: apiLinksOf(o.apiLinks),
        maxSimS: positive('max-sim-s', o.maxSimS),
        seed: Number(o.seed),
        ...(o.cores === undefined ? {} : { cpu: simCpu(positive('cores', o.cores), o.peerNsPerByte, nonNegative('host-cpu-s', o.hostCpuS), nonNegative('contention', o.contention)) }),
        routeUsPerSync: nonNegative('route-us-per-sync', o.routeUsPerSync),
        channelUsPerSync: nonNegative('channel-us-per-sync', o.channelUsPerSync),
        outDir,
        log: (line) => process.stdout.write(`${line}\n`),
      });
      process.stdout.write(`\n${renderSimTable(rows)}\nresults: ${outDir} (results.json, table.txt, alldone-vs-n.svg; see bench/README.md)\n`);
    });
}
