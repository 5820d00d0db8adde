// `pollen bench sim --against <fan-out results.json>`: the model held against the bed of the machine
// at hand. The simulation's one machine-specific input is what the pulls cost the peers' CPU
// (pollen-swarm.ts's cpu term): on a CPU-bound bed it sets the all-done time, and it moved 2 x
// between two machines of the same kind (a kernel whose every trip cost twice as much). So it is
// fitted from the bed's own Pollen rows (their total CPU, their hosts and the bytes the peers
// received and sent), each row predicted with a term fitted from the other rows only, and the
// simulation runs at every (N, S) the bed ran; the table gives both all-done times and how far apart
// they are.
//
// The term has three parts, because one cost per byte does not fit the bed: a byte costs less the
// more the machine is crowded (27, 22 and 16 ms a MiB at 256 MiB N = 4, 8 and 16 on one bed), and a
// pull costs a fixed part whatever its size. On a bed of the same machine the three parts predicted
// each row's CPU within 3 % from the other rows, where one cost per byte missed by up to 35 %
// (bench/README.md has the runs).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LAYER_SHARES } from '../fanout/layers.ts';
import { lowerBoundSeconds } from '../fanout/lower-bound.ts';
import { totalCpuS, type ScenarioResult } from '../fanout/scenario.ts';
import type { FanoutReport } from '../fanout/sweep.ts';
import { runPollenSwarm } from './pollen-swarm.ts';
import { mulberry32 } from './sim-bench.ts';

/**
 * A received byte costs the peers this many times a sent one. The bed gives one sum per row (every
 * peer both receives and sends, nearly the same bytes), so the split cannot be fitted from it; it
 * comes from `npm run bench:peer-cpu` (downloader against uploader on the seed and p2p paths, 3-4 : 1
 * on the machines measured, the mirror path's cost on the downloader's side).
 */
export const RX_TX_RATIO = 3;
const MIB = 1024 * 1024;

const FANOUT_KIND = 'pollen-bench-fanout' satisfies FanoutReport['kind'];

/** One Pollen row of a fan-out run: what the fit and the comparison need. */
export interface BedRow {
  n: number;
  sizeMiB: number;
  imageBytes: number;
  allDoneS: number;
  /** The CPU the whole system spent on the pulls (daemons and clients; report.ts's "total cpu s"). */
  cpuS: number;
  /** Bytes the peer hosts received and sent on their links. */
  rxBytes: number;
  txBytes: number;
  /**
   * When the last host's peer had served its client the image (fan-out results with hosts'
   * `servedS`): what the model's all-done is, the client's own work after it left out.
   */
  servedS?: number;
}

export interface Bed {
  cores: number;
  mbit: number;
  registryMbit: number;
  rows: BedRow[];
}

export interface PeerCpu {
  rxNsPerByte: number;
  txNsPerByte: number;
  /** CPU s a host's pull costs whatever its size (pollen-swarm.ts's SwarmCpu.hostCpuS). */
  hostCpuS: number;
  /** How much cheaper a byte gets on a crowded machine (network.ts's `contention`). */
  contention: number;
}

export interface AgreementRow {
  n: number;
  sizeMiB: number;
  lowerBoundS: number;
  bedS: number;
  simS: number;
  /** simS / bedS - 1. */
  diff: number;
  /** The bed's BedRow.servedS and simS / bedServedS - 1, where the bed has it. */
  bedServedS?: number;
  servedDiff?: number;
  cpu: PeerCpu;
  /** The CPU term came from the other rows (false: the bed had one Pollen row, so it came from this one). */
  heldOut: boolean;
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const num = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : NaN);

/** The Pollen rows of a `pollen bench fanout` results.json in which every host finished. */
export function readBed(json: unknown, source = 'results.json'): Bed {
  const bad = (why: string): Error => new Error(`${source} is not a fan-out result (pollen bench fanout's results.json): ${why}`);
  if (!isRecord(json) || json.kind !== FANOUT_KIND) throw bad(`no "kind": "${FANOUT_KIND}"`);
  const machine = json.machine;
  const options = json.options;
  if (!isRecord(machine) || !isRecord(options) || !Array.isArray(json.scenarios)) throw bad('machine, options or scenarios missing');
  const cores = num(machine.cpus);
  const mbit = num(options.mbit);
  const registryMbit = options.registryMbit === undefined ? mbit : num(options.registryMbit);
  if (!(cores > 0 && mbit > 0 && registryMbit > 0)) throw bad('machine.cpus, options.mbit or options.registryMbit is not a positive number');
  const rows: BedRow[] = [];
  for (const s of json.scenarios as unknown[]) {
    if (!isRecord(s) || s.system !== 'pollen' || s.error !== undefined || !Array.isArray(s.hosts) || !isRecord(s.daemons)) continue;
    const hosts = s.hosts.filter(isRecord);
    if (hosts.length === 0 || hosts.length !== s.hosts.length || hosts.some((h) => h.ok !== true) || !Object.values(s.daemons).every(isRecord)) continue;
    const row: BedRow = {
      n: num(s.n),
      sizeMiB: num(s.sizeMiB),
      imageBytes: num(s.imageBytes),
      allDoneS: num(s.allDoneS),
      // The report's own "total cpu s"; a field missing or not a number gives NaN, and the row is left out below.
      cpuS: num(totalCpuS(s as unknown as ScenarioResult)),
      rxBytes: hosts.reduce((sum, h) => sum + num(h.rxBytes), 0),
      txBytes: hosts.reduce((sum, h) => sum + num(h.txBytes), 0),
    };
    if (!Object.values(row).every((x) => x > 0)) continue;
    const served = hosts.map((h) => num(h.servedS));
    if (served.every((x) => x > 0)) row.servedS = Math.max(...served);
    rows.push(row);
  }
  if (rows.length === 0) throw bad('no Pollen row in which every host finished');
  return { cores, mbit, registryMbit, rows };
}

/** The contention exponents the fit tries: 0 to 0.95 by 0.01. */
const CONTENTION_STEPS = 96;
/** The costs per sent byte the fit tries first, ns: a log grid of 20 a decade, then refined. */
const K_GRID = { from: 1e-3, to: 1e5, perDecade: 20 };

/**
 * The peers' CPU that best explains the rows' CPU. A row of N hosts whose peers received rxBytes and
 * sent txBytes costs
 *   cpuS = N x hostCpuS + k x (RX_TX_RATIO x rxBytes + txBytes) x 1e-9 x max(1, L)^-contention,
 * a received byte RX_TX_RATIO x k ns and a sent one k on an idle machine, where
 *   L = N x link x (RX_TX_RATIO + 1) x k x 1e-9 / cores
 * is how many times the cores the peers' bytes would ask for, every host receiving at its link's
 * rate (what the network model's `contention` is applied to). Least squares on each row's relative
 * error, as rows differ tenfold in CPU: for each contention, a search over k with hostCpuS (>= 0)
 * solved for each k. A part the rows cannot tell apart is left out: the fixed part without two image
 * sizes, the discount without two N, both with fewer than three rows (one cost per byte then).
 */
export function fitPeerCpu(rows: readonly BedRow[], machine: { cores: number; mbit: number }, ratio = RX_TX_RATIO): PeerCpu {
  if (!rows.some((r) => r.rxBytes + r.txBytes > 0)) throw new Error('fitting the peers\' CPU needs at least one row with bytes moved');
  const parts = rows.length >= 3;
  const withHost = parts && new Set(rows.map((r) => r.sizeMiB)).size >= 2;
  const steps = parts && new Set(rows.map((r) => r.n)).size >= 2 ? CONTENTION_STEPS : 1;
  let best: { k: number; hostCpuS: number; contention: number; err: number } | undefined;
  for (let step = 0; step < steps; step++) {
    const fit = fitAtContention(rows, machine, ratio, step / 100, withHost);
    // A contention that explains the rows no better (none of them crowded) does not replace a lower one.
    if (!best || fit.err < best.err * (1 - 1e-9)) best = fit;
  }
  return { rxNsPerByte: ratio * best!.k, txNsPerByte: best!.k, hostCpuS: best!.hostCpuS, contention: best!.contention };
}

function fitAtContention(rows: readonly BedRow[], machine: { cores: number; mbit: number }, ratio: number, contention: number, withHost: boolean): { k: number; hostCpuS: number; contention: number; err: number } {
  const linkBytesPerS = (machine.mbit * 1e6) / 8;
  const bytesCpuS = (r: BedRow, k: number): number => k * (ratio * r.rxBytes + r.txBytes) * 1e-9 * Math.max(1, (r.n * linkBytesPerS * (ratio + 1) * k * 1e-9) / machine.cores) ** -contention;
  // At a given k the fixed part is linear: sum ((a N + bytes) / cpuS - 1)^2 is least at a = sum x e / sum x^2.
  const at = (k: number): { hostCpuS: number; err: number } => {
    let xe = 0;
    let xx = 0;
    for (const r of rows) {
      const x = r.n / r.cpuS;
      xe += x * (1 - bytesCpuS(r, k) / r.cpuS);
      xx += x * x;
    }
    const hostCpuS = withHost && xx > 0 ? Math.max(0, xe / xx) : 0;
    return { hostCpuS, err: rows.reduce((sum, r) => sum + ((r.n * hostCpuS + bytesCpuS(r, k)) / r.cpuS - 1) ** 2, 0) };
  };
  if (contention === 0) {
    // No discount: the fit is linear in both parts, solved outright (the fixed part held at >= 0).
    const linear = linearFit(rows, ratio, withHost);
    if (linear) return { ...linear, contention, err: at(linear.k).err };
  }
  // Else k also sets how crowded the cores are (L), so the error is searched over k, not solved: a
  // log grid, then golden sections about its best point.
  const step = 10 ** (1 / K_GRID.perDecade);
  let bestK = K_GRID.from;
  let bestErr = at(bestK).err;
  for (let k = K_GRID.from * step; k <= K_GRID.to; k *= step) {
    const err = at(k).err;
    if (err < bestErr) [bestK, bestErr] = [k, err];
  }
  let lo = bestK / step;
  let hi = bestK * step;
  const golden = (Math.sqrt(5) - 1) / 2;
  for (let i = 0; i < 80; i++) {
    const m1 = hi - golden * (hi - lo);
    const m2 = lo + golden * (hi - lo);
    if (at(m1).err <= at(m2).err) hi = m2;
    else lo = m1;
  }
  const k = at((lo + hi) / 2).err <= bestErr ? (lo + hi) / 2 : bestK;
  return { k, contention, ...at(k) };
}

/** Least squares of sum ((a N + k w) / cpuS - 1)^2, w the rows' weighted bytes, a >= 0 (undefined: no k > 0 fits). */
function linearFit(rows: readonly BedRow[], ratio: number, withHost: boolean): { k: number; hostCpuS: number } | undefined {
  let s11 = 0;
  let s12 = 0;
  let s22 = 0;
  let t1 = 0;
  let t2 = 0;
  for (const r of rows) {
    const x1 = r.n / r.cpuS;
    const x2 = ((ratio * r.rxBytes + r.txBytes) * 1e-9) / r.cpuS;
    s11 += x1 * x1;
    s12 += x1 * x2;
    s22 += x2 * x2;
    t1 += x1;
    t2 += x2;
  }
  const det = s11 * s22 - s12 * s12;
  if (withHost && det > 1e-9 * s11 * s22) {
    const a = (t1 * s22 - t2 * s12) / det;
    const k = (s11 * t2 - s12 * t1) / det;
    if (a >= 0 && k > 0) return { k, hostCpuS: a };
    if (a >= 0) return undefined;
  }
  return s22 > 0 && t2 > 0 ? { k: t2 / s22, hostCpuS: 0 } : undefined;
}

/** Each row's CPU term, fitted from the other rows (from the row itself when it is the only one). */
export function heldOutFits(rows: readonly BedRow[], machine: { cores: number; mbit: number }, ratio = RX_TX_RATIO): { cpu: PeerCpu; heldOut: boolean }[] {
  return rows.map((_, i) => {
    const others = rows.filter((__, j) => j !== i);
    return others.length > 0 ? { cpu: fitPeerCpu(others, machine, ratio), heldOut: true } : { cpu: fitPeerCpu(rows, machine, ratio), heldOut: false };
  });
}

export async function readBedFile(path: string): Promise<Bed> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the fan-out result ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not JSON: ${(err as Error).message}`);
  }
  return readBed(json, path);
}

export interface AgreementOptions {
  bed: Bed;
  /** How the image is split into the blobs each peer pulls at once (default: the bed image's layers, LAYER_SHARES). */
  layerShares?: readonly number[];
  seed: number;
  maxSimS: number;
  outDir: string;
  log: (line: string) => void;
}

/** Simulates every Pollen row of the bed with its held-out CPU term and the bed's links and cores. */
export async function runAgreement(o: AgreementOptions): Promise<AgreementRow[]> {
  const { bed } = o;
  const fits = heldOutFits(bed.rows, bed);
  const up = (bed.mbit * 1e6) / 8;
  const originUp = (bed.registryMbit * 1e6) / 8;
  const rows: AgreementRow[] = [];
  for (const [i, b] of bed.rows.entries()) {
    const { cpu, heldOut } = fits[i]!;
    const r = await runPollenSwarm({
      peers: b.n,
      // The image's layers as the bed made them (its config blob, a few hundred bytes, aside).
      blobBytes: b.sizeMiB * MIB,
      layerShares: o.layerShares ?? LAYER_SHARES,
      peerUpBytesPerS: up,
      peerDownBytesPerS: up,
      originUpBytesPerS: originUp,
      random: mulberry32(o.seed),
      maxSimMs: o.maxSimS * 1000,
      cpu: { cores: bed.cores, peerReceiveNsPerByte: cpu.rxNsPerByte, peerSendNsPerByte: cpu.txNsPerByte, hostCpuS: cpu.hostCpuS, contention: cpu.contention },
    });
    const lowerBoundS = lowerBoundSeconds(b.imageBytes, { registryUpMbit: bed.registryMbit, peerDownMbit: bed.mbit, peerUpMbit: new Array<number>(b.n).fill(bed.mbit) });
    const simS = r.unfinished > 0 ? Number.POSITIVE_INFINITY : r.allDoneMs / 1000;
    const row: AgreementRow = { n: b.n, sizeMiB: b.sizeMiB, lowerBoundS, bedS: b.allDoneS, simS, diff: simS / b.allDoneS - 1, cpu, heldOut };
    if (b.servedS !== undefined) Object.assign(row, { bedServedS: b.servedS, servedDiff: simS / b.servedS - 1 });
    rows.push(row);
    o.log(JSON.stringify({ bench: 'sim-agreement', ...row }));
  }
  await mkdir(o.outDir, { recursive: true });
  await writeFile(join(o.outDir, 'agreement.json'), `${JSON.stringify({ bed: { ...bed }, fitAll: fitPeerCpu(bed.rows, bed), rxTxRatio: RX_TX_RATIO, layerShares: o.layerShares ?? LAYER_SHARES, seed: o.seed, rows }, null, 2)}\n`);
  await writeFile(join(o.outDir, 'agreement.txt'), `${renderAgreementTable(rows)}\n`);
  return rows;
}

export function renderAgreementTable(rows: readonly AgreementRow[]): string {
  const head = ['S MiB', 'N', 'T* s', 'bed s', 'sim s', 'sim vs bed', 'bed served s', 'sim vs served', 'ns/B rx,tx', 'host CPU s', 'contention', 'fitted from'];
  const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const pct = (x: number | undefined): string => (x === undefined ? '-' : Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(x * 100).toFixed(0)} %` : 'n/a');
  const body = rows.map((r) => [
    String(r.sizeMiB), String(r.n), f(r.lowerBoundS), f(r.bedS), Number.isFinite(r.simS) ? f(r.simS) : 'unfinished',
    pct(r.diff), r.bedServedS !== undefined ? f(r.bedServedS) : '-', pct(r.servedDiff), `${f(r.cpu.rxNsPerByte, 1)},${f(r.cpu.txNsPerByte, 1)}`, f(r.cpu.hostCpuS), f(r.cpu.contention), r.heldOut ? 'other rows' : 'this row',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}
