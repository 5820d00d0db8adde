// `pollen bench sim`: sweeps N through the simulated Pollen fan-out (pollen-swarm.ts), and reports
// all-done time against N and T*, the real scheduler's cost (schedule() calls per wall second,
// calls the swarm needs per simulated second) and the supernode's memory per tracked peer-task.
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ManualClock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import { Bitfield } from '../../src/p2p/bitfield.ts';
import { Scheduler } from '../../supernode/p2p/scheduler.ts';
import type { SchedulerOptions } from '../../supernode/p2p/scheduler-options.ts';
import { Tracker } from '../../supernode/p2p/tracker.ts';
import { lowerBoundSeconds } from '../fanout/lower-bound.ts';
import { lineChart } from '../fanout/svg.ts';
import { quantileMs, runPollenSwarm, type SwarmCpu } from './pollen-swarm.ts';
import { simBlobs } from './sim-blobs.ts';
import { mulberry32 } from './seeded-random.ts';

export interface SimBenchOptions {
  peers: readonly number[];
  sizeMiB: number;
  mbit: number;
  originMbit: number;
  seed: number;
  pieceMiB?: number;
  /** How S is split into the blobs every peer pulls at once (default [1]: one blob; the bed's image: LAYER_SHARES). */
  layerShares?: readonly number[];
  /** Stop a run after this much simulated time; peers not done by then are reported as unfinished. */
  maxSimS: number;
  scheduler?: Partial<SchedulerOptions>;
  /** The supernode's --sync-rate (default its default). */
  syncRate?: number;
  /** The supernode's --sync-answer-rate, bytes a second (default its default). */
  syncAnswerRate?: number;
  /** Where the API's messages queue: the seed host's links (default) or links of their own (pollen-swarm.ts apiLinks). */
  apiLinks?: 'shared' | 'own';
  /** The machine's cores shared by the peers, and a peer's CPU ns per byte received and sent (pollen-swarm.ts). */
  cpu?: SwarmCpu;
  /**
   * CPU us a sync costs the supernode beyond the scheduler: the HTTP request that carries it (TLS,
   * parsing, validation, the token, the answer's JSON; one sync per request, as a peer pulling one
   * blob sends them: with layers a real peer batches its tasks' syncs, so this counts high there).
   * The simulation calls the scheduler directly; `npm run bench:sync` measures the
   * real route (0: not counted).
   */
  routeUsPerSync?: number;
  /**
   * The same for a batch of syncs on a sync channel (what peers send now: one frame on a kept
   * connection, no HTTP); routeUsPerSync then counts the heartbeats, registrations and creations.
   */
  channelUsPerSync?: number;
  outDir: string;
  log: (line: string) => void;
}

export interface SimRow {
  n: number;
  sizeMiB: number;
  /** Blobs each peer pulled at once, and their pieces together. */
  layers: number;
  pieces: number;
  lowerBoundS: number;
  allDoneS: number;
  xLowerBound: number;
  medianS: number;
  /** The 90th and 99th percentile of the peers' done times (JSON only: where the tail starts). */
  p90S: number;
  p99S: number;
  /** When the seed's last piece reached its peer (JSON only): all-done minus this is what the swarm took after the origin. */
  seedLastS: number;
  /** Share of peers done within 1.5 x T*, and within maxSimS. */
  doneBy15: number;
  doneByEnd: number;
  /** The seed's pieces, and the supernode API's answers and requests, over the image's size. */
  seedEgressXS: number;
  apiAnswersXS: number;
  apiRequestsXS: number;
  registryEgressXS: number;
  fallbacks: number;
  unfinished: number;
  duplicateXS: number;
  /** Wasted bytes / S by cause (the transfer's own accounting). */
  duplicateByCauseXS: Record<string, number>;
  /** Bytes that reached the peers over the network / (N x S): 1 means no byte twice. */
  receivedPerNeeded: number;
  stalls: number;
  starvedGrants: number;
  /** Connections a peer's transfers opened to parents, on average (the bed's "dials"). */
  dialsPerPeer: number;
  /** Peers' upload used until all-done (or the end of the run): bytes they sent / (N x u_peer x time). */
  peerUpUtil: number;
  scheduleCalls: number;
  /** Wall us per sync inside the simulation (inflated when the machine is loaded). */
  usPerSchedule: number;
  /** CPU us per sync with a parent scan measured apart (measureScheduleCpuUs), and what one core answers per second. */
  cpuUsPerSchedule: number;
  schedulesPerCoreS: number;
  /** CPU us per sync that runs no parent scan (its asker scanned within offerIntervalMs). */
  cpuUsPerSyncWithoutScan: number;
  meanSchedulesPerSimS: number;
  /** Syncs in each second of simulated time (where the peak falls: the start, the middle, the final reports). */
  syncsBySimS: number[];
  peakSchedulesPerSimS: number;
  /** The most parent scans in one second of simulated time. */
  peakScansPerSimS: number;
  /** The busiest simulated second's syncs at their measured CPU costs, in cores. */
  supernodeCpuAtPeak: number;
  /**
   * The same with each request's route cost (routeUsPerSync) added, for the syncs and the peers'
   * heartbeats: what the supernode process needs in its busiest second, and over its busiest 5 s
   * (a second's burst, such as every peer's first sync at once, waits in the queue).
   */
  supernodeCpuAtPeakWithRoute: number;
  supernodeCpuBusiest5sWithRoute: number;
  heartbeatsBySimS: number[];
  /** Registrations and task creations without a first sync, a second (requests without a schedule). */
  setupRequestsBySimS: number[];
  /** Registrations as the agents started, before the pull (each agent registers from its start, not its first pull). */
  registrationsBeforePull: number;
  bytesPerPeerTask: number;
  wallS: number;
  events: number;
}

export { mulberry32 };

function gcNow(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Heap bytes per peer-task of the real Tracker + Scheduler: n peers registered and joined to one task, each holding half the pieces. */
export function measureBytesPerPeerTask(n: number, pieceCount: number): number {
  const clock = new ManualClock(0);
  gcNow();
  const before = process.memoryUsage().heapUsed;
  const scheduler = new Scheduler({ clock });
  const tracker = new Tracker({ clock, onDrop: (p) => scheduler.dropPeer(p) });
  const digest = `sha256:${'ab'.repeat(32)}` as Digest;
  for (let i = 0; i < n; i++) {
    const peer = tracker.register(`peer-${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:65002`, 8).peer;
    const bits = new Bitfield(pieceCount);
    for (let p = i % 2; p < pieceCount; p += 2) bits.set(p);
    scheduler.join(digest, pieceCount, peer, bits);
  }
  gcNow();
  const after = process.memoryUsage().heapUsed;
  if (tracker.size !== n) throw new Error('tracker lost peers');
  return Math.max(0, after - before) / n;
}

/**
 * CPU microseconds of one sync's have() + schedule() with n peers holding random halves of the
 * pieces (process CPU time, so other processes on the machine do not inflate it), measured after
 * as many calls again untimed: a supernode answering thousands of syncs a second runs optimized
 * code, and 2,000 cold calls counted the compiler's work as the scheduler's (2-3 x the steady cost).
 */
export function measureScheduleCpuUs(n: number, pieceCount: number, options: Partial<SchedulerOptions> = {}, calls = 20_000): { scan: number; withoutScan: number } {
  return { scan: syncCpuUs(n, pieceCount, { ...options, offerIntervalMs: 0 }, calls), withoutScan: syncCpuUs(n, pieceCount, { ...options, offerIntervalMs: Number.POSITIVE_INFINITY }, calls) };
}

/** As measureScheduleCpuUs, with every asker scanned once first (so an infinite offer interval times syncs without a scan). */
function syncCpuUs(n: number, pieceCount: number, options: Partial<SchedulerOptions>, calls: number): number {
  const clock = new ManualClock(0);
  const scheduler = new Scheduler({ clock }, options);
  const tracker = new Tracker({ clock, onDrop: (p) => scheduler.dropPeer(p) });
  const digest = `sha256:${'cd'.repeat(32)}` as Digest;
  const random = mulberry32(n);
  for (let i = 0; i < n; i++) {
    const bits = new Bitfield(pieceCount);
    for (let p = 0; p < pieceCount; p++) if (random() < 0.5) bits.set(p);
    scheduler.join(digest, pieceCount, tracker.register(`peer-${i}`, `10.0.0.1:${i}`, 8).peer, bits);
  }
  for (let i = 0; i < n; i++) scheduler.schedule(digest, `peer-${i}`, 3);
  const run = (count: number): void => {
    for (let k = 0; k < count; k++) {
      const asker = `peer-${Math.floor(random() * n)}`;
      scheduler.have(digest, asker, [Math.floor(random() * pieceCount)]);
      scheduler.schedule(digest, asker, 3);
      if (k % 100 === 0) clock.advance(50);
    }
  };
  run(calls);
  const start = process.cpuUsage();
  run(calls);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / calls;
}

export async function runSimBench(o: SimBenchOptions): Promise<SimRow[]> {
  const blobBytes = o.sizeMiB * 1024 * 1024;
  const pieceBytes = o.pieceMiB === undefined ? undefined : o.pieceMiB * 1024 * 1024;
  const layerShares = o.layerShares ?? [1];
  const up = (o.mbit * 1e6) / 8;
  const originUp = (o.originMbit * 1e6) / 8;
  const rows: SimRow[] = [];
  await mkdir(o.outDir, { recursive: true });
  for (const n of o.peers) {
    // Timed before the swarm, on a heap that holds nothing else: measured after it (the same
    // process, the swarm's garbage and its final state still around) major collections landed in
    // the timed calls, and 10,000 peers read 44 us per sync where a fresh process measures 14.
    gcNow();
    // The largest blob's task (the first share is the largest in the bed's image).
    const taskPieces = simBlobs(blobBytes, layerShares, pieceBytes, n)[0]!.pieceCount;
    const cpu = measureScheduleCpuUs(n, taskPieces, o.scheduler);
    const r = await runPollenSwarm({ peers: n, blobBytes, layerShares, ...(pieceBytes === undefined ? {} : { pieceBytes }), peerUpBytesPerS: up, peerDownBytesPerS: up, originUpBytesPerS: originUp, random: mulberry32(o.seed), scheduler: o.scheduler, ...(o.syncRate === undefined ? {} : { syncRate: o.syncRate }), ...(o.syncAnswerRate === undefined ? {} : { syncAnswerRate: o.syncAnswerRate }), ...(o.apiLinks === undefined ? {} : { apiLinks: o.apiLinks }), maxSimMs: o.maxSimS * 1000, ...(o.cpu ? { cpu: o.cpu } : {}) });
    const lowerBoundS = lowerBoundSeconds(blobBytes, { registryUpMbit: o.originMbit, peerDownMbit: o.mbit, peerUpMbit: new Array<number>(n).fill(o.mbit) });
    const cpuUsPerSchedule = cpu.scan;
    const { callsBySimS, scansBySimS, heartbeatsBySimS, setupRequestsBySimS } = r.supernode;
    const usBySimS = Array.from(callsBySimS, (calls = 0, s) => (calls - (scansBySimS[s] ?? 0)) * cpu.withoutScan + (scansBySimS[s] ?? 0) * cpu.scan);
    const seconds = Math.max(callsBySimS.length, heartbeatsBySimS.length, setupRequestsBySimS.length);
    // Every call pays its transport (TLS, framing or HTTP, the token, JSON): syncs and creations a
    // channel frame's, heartbeats and registrations an HTTP request's (and the rare creations
    // without a first schedule, counted with registrations: an HTTP request's, the dearer).
    const withRouteUs = Array.from({ length: seconds }, (_, s) => (usBySimS[s] ?? 0) + (callsBySimS[s] ?? 0) * (o.channelUsPerSync ?? o.routeUsPerSync ?? 0) + ((heartbeatsBySimS[s] ?? 0) + (setupRequestsBySimS[s] ?? 0)) * (o.routeUsPerSync ?? 0));
    const busiest5s = Math.max(0, ...withRouteUs.map((_, s) => withRouteUs.slice(s, s + 5).reduce((a, b) => a + b, 0) / 5));
    const usPerSchedule = (r.supernode.syncWallMs * 1000) / Math.max(1, r.supernode.scheduleCalls);
    const simS = (Number.isFinite(r.allDoneMs) ? r.allDoneMs : Math.max(...r.doneMs.filter(Number.isFinite), 1)) / 1000;
    const row: SimRow = {
      n,
      sizeMiB: o.sizeMiB,
      layers: r.blobs.length,
      pieces: r.pieceCount,
      lowerBoundS,
      allDoneS: r.allDoneMs / 1000,
      xLowerBound: r.allDoneMs / 1000 / lowerBoundS,
      medianS: r.medianMs / 1000,
      p90S: quantileMs(r.doneMs, 0.9) / 1000,
      p99S: quantileMs(r.doneMs, 0.99) / 1000,
      seedLastS: r.seedLastMs / 1000,
      doneBy15: r.doneMs.filter((t) => t / 1000 <= 1.5 * lowerBoundS).length / n,
      doneByEnd: (n - r.unfinished) / n,
      seedEgressXS: r.seedSentBytes / blobBytes,
      apiAnswersXS: r.apiBytes.answers / blobBytes,
      apiRequestsXS: r.apiBytes.requests / blobBytes,
      registryEgressXS: r.registrySentBytes / blobBytes,
      fallbacks: r.fallbacks,
      unfinished: r.unfinished,
      duplicateXS: r.totals.duplicate / blobBytes,
      duplicateByCauseXS: Object.fromEntries(Object.entries(r.totals.duplicateByCause).map(([k, v]) => [k, v / blobBytes])),
      receivedPerNeeded: r.totals.networkReceived / (n * blobBytes),
      stalls: r.totals.stalls,
      starvedGrants: r.totals.starvedGrants,
      dialsPerPeer: r.totals.dials / n,
      peerUpUtil: r.peersSentBytes / (n * up * (Number.isFinite(r.allDoneMs) ? r.allDoneMs / 1000 : o.maxSimS)),
      scheduleCalls: r.supernode.scheduleCalls,
      usPerSchedule,
      cpuUsPerSchedule,
      schedulesPerCoreS: 1e6 / cpuUsPerSchedule,
      cpuUsPerSyncWithoutScan: cpu.withoutScan,
      meanSchedulesPerSimS: r.supernode.scheduleCalls / simS,
      syncsBySimS: Array.from(callsBySimS, (c = 0) => c),
      peakSchedulesPerSimS: r.supernode.peakCallsPerSimS,
      peakScansPerSimS: Math.max(0, ...Array.from(scansBySimS, (x = 0) => x)),
      supernodeCpuAtPeak: Math.max(0, ...usBySimS) / 1e6,
      supernodeCpuAtPeakWithRoute: Math.max(0, ...withRouteUs) / 1e6,
      supernodeCpuBusiest5sWithRoute: busiest5s / 1e6,
      heartbeatsBySimS: Array.from(heartbeatsBySimS, (c = 0) => c),
      setupRequestsBySimS: Array.from(setupRequestsBySimS, (c = 0) => c),
      registrationsBeforePull: r.supernode.registrationsBeforePull,
      bytesPerPeerTask: measureBytesPerPeerTask(n, taskPieces),
      wallS: r.wallMs / 1000,
      events: r.events,
    };
    rows.push(row);
    o.log(JSON.stringify({ bench: 'sim', apiLinks: o.apiLinks ?? 'shared', ...row }));
  }
  await writeFile(join(o.outDir, 'results.json'), `${JSON.stringify({ options: { ...o, log: undefined }, rows }, null, 2)}\n`);
  const table = renderSimTable(rows);
  await writeFile(join(o.outDir, 'table.txt'), `${table}\n`);
  await writeFile(
    join(o.outDir, 'alldone-vs-n.svg'),
    lineChart({
      title: `Simulated Pollen fan-out, S=${o.sizeMiB} MiB, ${o.mbit} Mbit/s peers, origin ${o.originMbit} Mbit/s`,
      xLabel: 'log10 N (2 = 100 peers, 3 = 1,000, 4 = 10,000)',
      yLabel: 'all-done time / T*',
      series: [
        { name: 'Pollen (real scheduler)', points: rows.map((r) => [Math.log10(r.n), r.xLowerBound] as [number, number]) },
        { name: 'target 1.5 x T*', dashed: true, points: rows.map((r) => [Math.log10(r.n), 1.5] as [number, number]) },
        { name: 'T*', dashed: true, points: rows.map((r) => [Math.log10(r.n), 1] as [number, number]) },
      ],
    }),
  );
  return rows;
}

export function renderSimTable(rows: readonly SimRow[]): string {
  const head = ['N', 'S MiB', 'layers', 'pieces', 'T* s', 'all-done s', 'x T*', 'median s', 'done@1.5T*', 'done@end', 'seed xS', 'API xS out,in', 'registry xS', 'fallbacks', 'dup xS', 'recv/need', 'stalls', 'starved', 'peer up used', 'wall us/sync', 'cpu us/scan', 'cpu us/sync w/o scan', 'scans/s/core', 'syncs/s peak', 'scans/s peak', 'sn CPU at peak', 'sn CPU at peak +route', 'sn CPU 5 s +route', 'B/peer-task', 'wall s'];
  const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const body = rows.map((r) => [
    String(r.n), String(r.sizeMiB), String(r.layers), String(r.pieces), f(r.lowerBoundS), r.unfinished > 0 ? `${r.unfinished} unfinished` : f(r.allDoneS), f(r.xLowerBound, 2), f(r.medianS), `${f(r.doneBy15 * 100, 0)} %`, `${f(r.doneByEnd * 100, 0)} %`,
    f(r.seedEgressXS, 2), `${f(r.apiAnswersXS, 2)},${f(r.apiRequestsXS, 2)}`, f(r.registryEgressXS, 2), String(r.fallbacks), f(r.duplicateXS, 1), f(r.receivedPerNeeded, 2), String(r.stalls), String(r.starvedGrants), `${f(r.peerUpUtil * 100, 0)} %`, f(r.usPerSchedule, 0), f(r.cpuUsPerSchedule, 0), f(r.cpuUsPerSyncWithoutScan, 0), f(r.schedulesPerCoreS, 0), String(r.peakSchedulesPerSimS), String(r.peakScansPerSimS),
    `${f(r.supernodeCpuAtPeak * 100, 0)} %`, `${f(r.supernodeCpuAtPeakWithRoute * 100, 0)} %`, `${f(r.supernodeCpuBusiest5sWithRoute * 100, 0)} %`, f(r.bytesPerPeerTask, 0), f(r.wallS),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}
