// The benchmark's charts: per (S, N) the completion-time CDF of each system with T* marked and the
// rate at which the peers received over time, and per S the all-done time against N for each
// system beside T*.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LinkSeries } from '../testbed/link-series.ts';
import { median, type ScenarioResult } from './scenario.ts';
import { lineChart, type Series } from './svg.ts';
import type { FanoutReport } from './sweep.ts';

export function cdfSeries(times: readonly number[]): [number, number][] {
  const sorted = [...times].sort((a, b) => a - b);
  const pts: [number, number][] = [[0, 0]];
  for (const [i, t] of sorted.entries()) pts.push([t, (i + 1) / sorted.length]);
  return pts;
}

const RATE_BIN_MS = 300;

/** The peers' summed receive rate (MB/s) over time (s from the origin), in bins of RATE_BIN_MS. */
export function peerRateSeries(series: LinkSeries, peers: readonly string[]): [number, number][] {
  const idx = peers.map((p) => series.hosts.indexOf(p)).filter((i) => i >= 0);
  const per = Math.max(1, Math.round(RATE_BIN_MS / series.intervalMs));
  const pts: [number, number][] = [];
  for (let i = 0; i + per <= series.rxBytes.length; i += per) {
    let bytes = 0;
    for (let j = i; j < i + per; j++) for (const h of idx) bytes += series.rxBytes[j]![h]!;
    pts.push([(series.startMs + (i + per) * series.intervalMs) / 1000, bytes / 1e6 / ((per * series.intervalMs) / 1000)]);
  }
  return pts;
}

/** How busy the machine's cores were (% of their time) over time (s from the origin), in bins of RATE_BIN_MS; empty without a CPU series. */
export function cpuBusySeries(series: LinkSeries): [number, number][] {
  const busy = series.cpuBusy ?? [];
  const per = Math.max(1, Math.round(RATE_BIN_MS / series.intervalMs));
  const pts: [number, number][] = [];
  for (let i = 0; i + per <= busy.length; i += per) {
    const bin = busy.slice(i, i + per).filter((b) => Number.isFinite(b));
    if (bin.length > 0) pts.push([(series.startMs + (i + per) * series.intervalMs) / 1000, (100 * bin.reduce((a, b) => a + b, 0)) / bin.length]);
  }
  return pts;
}

/**
 * One scenario per system: with several runs, the finished run whose all-done is the median (the
 * lower of the middle two); a system none of whose runs finished keeps its first.
 */
export function medianRuns(rs: readonly ScenarioResult[]): ScenarioResult[] {
  const out: ScenarioResult[] = [];
  for (const system of [...new Set(rs.map((r) => r.system))]) {
    const mine = rs.filter((r) => r.system === system);
    const finished = mine.filter((r) => !r.error && Number.isFinite(r.allDoneS)).sort((a, b) => a.allDoneS - b.allDoneS);
    out.push(finished.length > 0 ? finished[Math.floor((finished.length - 1) / 2)]! : mine[0]!);
  }
  return out;
}

/** The median all-done time of the runs that finished (NaN when none did: no point on a chart). */
export function finishedMedian(rs: readonly ScenarioResult[]): number {
  return median(rs.filter((r) => !r.error && Number.isFinite(r.allDoneS)).map((r) => r.allDoneS));
}

export async function writeCharts(report: FanoutReport, outDir: string): Promise<string[]> {
  const written: string[] = [];
  const ran = report.scenarios.filter((r) => r.hosts.length > 0);
  const systems = [...new Set(ran.map((r) => r.system))];
  for (const sizeMiB of report.options.sizesMiB) {
    for (const n of report.options.peers) {
      const rs = medianRuns(ran.filter((r) => r.sizeMiB === sizeMiB && r.n === n));
      if (rs.length === 0) continue;
      const series: Series[] = rs.map((r) => ({ name: r.system, step: true, points: cdfSeries(r.hosts.filter((h) => h.ok).map((h) => h.seconds)) }));
      const tStar = rs[0]!.lowerBoundS;
      series.push({ name: 'T* (lower bound)', dashed: true, points: [[tStar, 0], [tStar, 1]] });
      const file = `cdf-s${sizeMiB}-n${n}.svg`;
      await writeFile(join(outDir, file), lineChart({ title: `Completion time CDF, N=${n} hosts, S=${sizeMiB} MiB, ${report.options.mbit} Mbit/s`, xLabel: 'seconds since all pulls started', yLabel: 'fraction of hosts done', series, yMax: 1 }));
      written.push(file);
      const sampled = rs.filter((r) => r.series);
      if (sampled.length === 0) continue;
      const rates: Series[] = sampled.map((r) => ({ name: r.system, dots: false, points: peerRateSeries(r.series!, r.hosts.map((h) => h.host)) }));
      const cap = (n * report.options.mbit) / 8;
      const tEnd = Math.max(...rates.flatMap((s) => s.points.map(([x]) => x)));
      rates.push({ name: 'the peers\' downlinks', dashed: true, dots: false, points: [[0, cap], [tEnd, cap]] });
      const rateFile = `rate-s${sizeMiB}-n${n}.svg`;
      await writeFile(join(outDir, rateFile), lineChart({ title: `Bytes the ${n} peers received, S=${sizeMiB} MiB, ${report.options.mbit} Mbit/s`, xLabel: 'seconds since all pulls started', yLabel: 'MB/s, all peers together', series: rates }));
      written.push(rateFile);
      const cpu: Series[] = sampled.map((r) => ({ name: r.system, dots: false, points: cpuBusySeries(r.series!) })).filter((c) => c.points.length > 0);
      if (cpu.length === 0) continue;
      const cpuFile = `cpu-s${sizeMiB}-n${n}.svg`;
      await writeFile(join(outDir, cpuFile), lineChart({ title: `The machine's cores during the pulls, N=${n}, S=${sizeMiB} MiB (${report.machine.cpus} cores, every process)`, xLabel: 'seconds since all pulls started', yLabel: '% of the cores busy', series: cpu, yMax: 100 }));
      written.push(cpuFile);
    }
    const bySize = ran.filter((r) => r.sizeMiB === sizeMiB);
    if (bySize.length === 0) continue;
    const series: Series[] = systems.map((name) => ({
      name,
      points: [...new Set(bySize.filter((r) => r.system === name).map((r) => r.n))].map((n) => [n, finishedMedian(bySize.filter((r) => r.system === name && r.n === n))] as [number, number]),
    }));
    const bounds = new Map(bySize.map((r) => [r.n, r.lowerBoundS]));
    series.push({ name: 'T* (lower bound)', dashed: true, points: [...bounds].sort((a, b) => a[0] - b[0]) });
    const file = `alldone-vs-n-s${sizeMiB}.svg`;
    await writeFile(join(outDir, file), lineChart({ title: `All-done time against N, S=${sizeMiB} MiB, ${report.options.mbit} Mbit/s`, xLabel: 'N (peer hosts)', yLabel: 'seconds until every host has the image', series }));
    written.push(file);
  }
  return written;
}
