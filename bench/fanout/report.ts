// The readable table of a fan-out run: one row per scenario, times against the lower bound T* and
// the direct baseline of the same N and S, and the registry's egress as a multiple of the image size.
import { swarmFigures } from '../testbed/link-series.ts';
import { median, totalCpuS, type ScenarioResult } from './scenario.ts';
import type { FanoutReport } from './sweep.ts';

const COLUMNS = ['S MiB', 'N', 'system', 'all-done s', 'x T*', 'x direct', 'median s', 'reg egress xS', 'sn egress xS', 'rx reg/sn/peers %', 'rx/need', 'rx max xS', 'down drops', 'rx pkt/MiB', 'dup xS', 'fallbacks', 'stalls', 'starved', 'seed grants u/s', 'half-rate s', 'link use %', 'tail s', 'client tail s', 'client cpu s', 'client rss MiB', 'daemon cpu s', 'daemon sys %', 'daemon life cpu s', 'total cpu s', 'cores busy %', 'cpu-bound %', 'status'] as const;
const STATUS = COLUMNS.length - 1;

function fmt(x: number, digits = 2): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

/** The link time series' figures of a scenario (see swarmFigures), or undefined for a report without a series. */
export function scenarioSwarm(r: ScenarioResult, mbit: number): ReturnType<typeof swarmFigures> | undefined {
  if (!r.series) return undefined;
  const peers = r.hosts.map((h) => h.host);
  return swarmFigures(r.series, peers, r.series.hosts.filter((h) => !peers.includes(h)), (mbit * 1e6) / 8, r.allDoneS);
}

/** The median over its hosts of the client's own work after its daemon served it the last byte (NaN when not known). */
export function clientTailS(r: ScenarioResult): number {
  const tails = r.hosts.filter((h) => h.ok && h.servedS !== undefined).map((h) => h.seconds - h.servedS!);
  return tails.length > 0 ? median(tails) : NaN;
}

function row(r: ScenarioResult, direct: ScenarioResult | undefined, cores: number, mbit: number): string[] {
  if (r.error?.startsWith('not run')) return [String(r.sizeMiB), String(r.n), r.system, ...new Array<string>(STATUS - 3).fill('-'), 'not run (see below)'];
  const rx = r.hosts.reduce((a, h) => ({ reg: a.reg + h.fromRegistry, sn: a.sn + h.fromSupernode, peers: a.peers + h.fromPeers }), { reg: 0, sn: 0, peers: 0 });
  const total = rx.reg + rx.sn + rx.peers || 1;
  const meanCpu = r.hosts.reduce((s, h) => s + h.clientCpuS, 0) / (r.hosts.length || 1);
  const maxRss = Math.max(0, ...r.hosts.map((h) => h.clientMaxRssMiB));
  const daemonCpu = Object.values(r.daemons).reduce((s, d) => s + d.cpuS, 0);
  const daemonSys = Object.values(r.daemons).reduce((s, d) => s + (d.sysS ?? NaN), 0);
  const daemonLifeCpu = Object.values(r.daemons).reduce((s, d) => s + (d.lifeCpuS ?? d.cpuS), 0);
  const failed = r.hosts.filter((h) => !h.ok).length;
  const t = r.transfer;
  const swarm = scenarioSwarm(r, mbit);
  return [
    String(r.sizeMiB),
    String(r.n),
    r.run ? `${r.system} #${r.run}` : r.system,
    fmt(r.allDoneS),
    fmt(r.allDoneS / r.lowerBoundS),
    direct && r.system !== 'direct' ? fmt(r.allDoneS / direct.allDoneS) : r.system === 'direct' ? '1.00' : '-',
    fmt(r.medianS),
    fmt(r.registryEgressBytes / r.imageBytes),
    fmt(r.supernodeEgressBytes / r.imageBytes),
    `${Math.round((100 * rx.reg) / total)}/${Math.round((100 * rx.sn) / total)}/${Math.round((100 * rx.peers) / total)}`,
    fmt(r.hosts.reduce((s, h) => s + h.rxBytes, 0) / (r.n * r.imageBytes || 1)),
    fmt(Math.max(...r.hosts.map((h) => h.rxBytes)) / (r.imageBytes || 1), 3),
    r.hosts.every((h) => h.downDrops !== undefined) ? String(r.hosts.reduce((s, h) => s + h.downDrops!, 0)) : '-',
    fmt(r.hosts.reduce((s, h) => s + (h.rxPackets ?? NaN), 0) / (r.hosts.reduce((s, h) => s + h.rxBytes, 0) / 2 ** 20), 0),
    t ? fmt(t.duplicateBytes / r.imageBytes) : '-',
    t ? String(t.fallbacks) : '-',
    t ? String(t.stalls) : '-',
    t ? String(t.starvedGrants) : '-',
    t?.seedGrants ? `${t.seedGrants.unheld}/${t.seedGrants.starved}` : '-',
    swarm ? fmt(swarm.halfRateS, 1) : '-',
    swarm ? fmt(swarm.linkUsePct, 0) : '-',
    swarm ? fmt(swarm.tailS, 1) : '-',
    fmt(clientTailS(r)),
    fmt(meanCpu),
    fmt(maxRss, 0),
    fmt(daemonCpu),
    fmt((100 * daemonSys) / daemonCpu, 0),
    fmt(daemonLifeCpu),
    fmt(totalCpuS(r)),
    fmt((100 * totalCpuS(r)) / (cores * r.allDoneS), 0),
    swarm ? fmt(swarm.cpuBoundPct, 0) : '-',
    r.error ? `FAILED ${failed}/${r.hosts.length}` : 'ok',
  ];
}

export function renderTable(report: FanoutReport): string {
  const rows: string[][] = [];
  for (const r of report.scenarios) {
    const direct = report.scenarios.find((d) => d.system === 'direct' && d.n === r.n && d.sizeMiB === r.sizeMiB && d.run === r.run && !d.error);
    rows.push(row(r, direct, report.machine.cpus, report.options.mbit));
  }
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 2 || i === STATUS ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const o = report.options;
  const head = [
    `pollen bench fanout: links ${o.mbit} Mbit/s up and down per host, registry upload ${o.registryMbit} Mbit/s; ${report.machine.cpus} cores, kernel ${report.machine.kernel}` +
      (o.warmUpMiB ? `; pollen and proxy-cache daemons warmed up by a ${o.warmUpMiB} MiB pull of another image before each measured pull` : '') +
      (o.vmMemory === 'held' ? "; the VM's freed memory held (free page reporting off, as on a host that has run a while)" : o.vmMemory === 'not asked' ? "; the VM's freed memory as it keeps it (--vm-memory as-is)" : o.vmMemory ? `; the VM's freed memory: ${o.vmMemory}` : ''),
    'T* = max(S/u_registry, S/d_peer, N*S/(u_registry + sum u_peer)); "x direct" = all-done / all-done of direct pulls at the same N and S;',
    '"reg egress xS" = bytes the registry host sent / image size; "rx reg/sn/peers %" = where the peers\' received bytes came from;',
    '"rx/need" = bytes the peers received / (N x image size); "rx max xS" = the most one host received / image size (interface bytes, TCP/IP headers included); "down drops" = packets the peers\' download queues dropped (the interface counted each, up to 64 KiB, before the drop, and TCP sent it again); "rx pkt/MiB" = packets the peers received per MiB received (1 MiB is ~725 full frames); Pollen\'s own counts (its peers\' "blob committed" lines): "dup xS" = bytes received and',
    'thrown away / image size (by cause in report.json), "fallbacks" to the registry, "stalls" (parents dropped for a stalled piece), "starved" (seed grants declined);',
    '"seed grants u/s" = seed pieces the supernode granted: unheld (the first copy of a piece) / to peers starved of pieces (what takes "sn egress" past 1 x S);',
    'From every link\'s byte counters per 100 ms (rate-s<S>-n<N>.svg): "half-rate s" = when the peers together first received at half of what their downlinks carry (over 300 ms);',
    '"link use %" = the peers\' received bytes until all-done / what their downlinks could carry in that time; "tail s" = all-done - the servers\' (registry and supernode hosts) last 100 ms sending >= 10 % of a link;',
    '"client tail s" = the median host\'s pull end - when its daemon served its client the last byte (Pollen: the peer\'s last blob answered): the client\'s own work after it (skopeo checks and fsyncs each blob);',
    '"daemon cpu s" = CPU of the long-running processes from the start of the pulls until they stop (aria2c, started by the pull, whole), "daemon sys %" the kernel share of it; "daemon life cpu s" = the same with their start-up;',
    '"total cpu s" = daemon cpu s + the clients that are not daemons (skopeo; aria2c is both, counted once): the CPU the system spent on the pulls;',
    '"cores busy %" = total cpu s / (cores x all-done s): near 100 the run was bound by the machine\'s CPU, not by its links;',
    '"cpu-bound %" = the share of the run\'s 100 ms intervals in which the machine\'s cores (every process on it, from /proc/stat) were at least 95 % busy (cpu-s<S>-n<N>.svg): which phases the CPU bound.',
    '',
    line(COLUMNS),
    line(COLUMNS.map((_, i) => '-'.repeat(widths[i]!))),
  ];
  const medians = report.options.runs && report.options.runs > 1 ? ['', ...renderMedians(report)] : [];
  const notes = report.scenarios.filter((r) => r.error && !r.error.startsWith('not run')).map((r) => `${r.system} N=${r.n} S=${r.sizeMiB}: ${r.error!.slice(0, 400)}`);
  for (const r of report.scenarios) {
    const retried = r.hosts.filter((h) => h.retriedAfter);
    if (retried.length > 0) notes.push(`${r.system} N=${r.n} S=${r.sizeMiB}${r.run ? ` run ${r.run}` : ''}: ${retried.length} pull(s) retried (counted in the time) after: ${retried[0]!.retriedAfter!.slice(0, 300)}`);
  }
  const notRun = report.systems.filter((s) => s.notRun).map((s) => `${s.name}: not run: ${s.notRun}`);
  return `${[...head, ...rows.map(line), ...medians, '', ...notRun, ...notes].join('\n')}\n`;
}

export interface RunsSummary {
  sizeMiB: number;
  n: number;
  system: string;
  /** Runs that finished (every host had the image). */
  runs: number;
  medianAllDoneS: number;
  minAllDoneS: number;
  maxAllDoneS: number;
  lowerBoundS: number;
  medianTotalCpuS: number;
  /** Runs in which this system's all-done was the lowest of the run (ties count for each). */
  fastest: number;
}

/** Per (S, N, system) over the runs of --runs: all-done median and range, CPU median, and how often it was the fastest of its run. */
export function summarizeRuns(report: FanoutReport): RunsSummary[] {
  const ok = report.scenarios.filter((r) => !r.error && Number.isFinite(r.allDoneS));
  const out: RunsSummary[] = [];
  for (const sizeMiB of report.options.sizesMiB) {
    for (const n of report.options.peers) {
      const here = ok.filter((r) => r.sizeMiB === sizeMiB && r.n === n);
      const best = new Map<number, number>();
      for (const r of here) best.set(r.run ?? 1, Math.min(best.get(r.run ?? 1) ?? Infinity, r.allDoneS));
      for (const system of report.options.systems) {
        const rs = here.filter((r) => r.system === system);
        if (rs.length === 0) continue;
        const times = rs.map((r) => r.allDoneS);
        out.push({
          sizeMiB,
          n,
          system,
          runs: rs.length,
          medianAllDoneS: median(times),
          minAllDoneS: Math.min(...times),
          maxAllDoneS: Math.max(...times),
          lowerBoundS: rs[0]!.lowerBoundS,
          medianTotalCpuS: median(rs.map(totalCpuS)),
          fastest: rs.filter((r) => r.allDoneS <= best.get(r.run ?? 1)!).length,
        });
      }
    }
  }
  return out;
}

function renderMedians(report: FanoutReport): string[] {
  const cols = ['S MiB', 'N', 'system', 'runs ok', 'median all-done s', 'min-max s', 'median x T*', 'median total cpu s', 'fastest of its run'];
  const rows = summarizeRuns(report).map((m) => [
    String(m.sizeMiB),
    String(m.n),
    m.system,
    String(m.runs),
    fmt(m.medianAllDoneS),
    `${fmt(m.minAllDoneS)}-${fmt(m.maxAllDoneS)}`,
    fmt(m.medianAllDoneS / m.lowerBoundS),
    fmt(m.medianTotalCpuS),
    `${m.fastest} of ${m.runs}`,
  ]);
  const widths = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [
    `Over the ${report.options.runs} runs of each (S, N) (every system once per run, a different one first each time): failed runs are left out; "fastest of its run" counts the runs whose all-done was the lowest of that run.`,
    '',
    line(cols),
    line(cols.map((_, i) => '-'.repeat(widths[i]!))),
    ...rows.map(line),
  ];
}
