// A time series of every host's link during a run: the bytes each host sent and received in each
// interval (100 ms by default), read from the bridge side of its veth. The totals of a run say how
// many bytes moved; the series says when: how long a swarm takes to fill the links, how much of
// them it uses mid-run, how long its tail is after the servers fall quiet. Beside it, how busy the
// machine's cores were in each interval (/proc/stat): every host of the bed shares them, so a phase
// in which they are all busy is bound by the CPU, whatever the links could still carry.
//
// The counters live in the bridge's namespace. /proc/<pid>/net/dev shows the network namespace of
// that process, so a `sleep` held in the bridge namespace lets the bench read them every interval
// without a process per sample (and without the cost falling on any measured process).
import { readFileSync } from 'node:fs';

/** Bytes each host sent and received per interval, from `startMs` (relative to the series' origin). */
export interface LinkSeries {
  intervalMs: number;
  /** Milliseconds from the origin (the pulls' common start) to the first sample. */
  startMs: number;
  hosts: string[];
  /** rxBytes[i][h]: bytes host h received in interval i (i from 0; interval i ends at startMs + (i + 1) * intervalMs). */
  rxBytes: number[][];
  txBytes: number[][];
  /** cpuBusy[i]: the share (0-1) of the machine's CPU time that was busy in interval i (absent in reports from before it was sampled). */
  cpuBusy?: number[];
}

/** The machine's CPU time so far in clock ticks, all cores: busy (anything but idle and iowait) and total, from the text of /proc/stat. */
export function parseProcStat(text: string): { busy: number; total: number } | undefined {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return undefined;
  // user nice system idle iowait irq softirq steal (guest time is counted in user already)
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 5 || f.some((x) => !Number.isFinite(x))) return undefined;
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

/** rx/tx byte counters by interface name, from the text of /proc/net/dev. */
export function parseNetDev(text: string): Map<string, { rx: number; tx: number }> {
  const out = new Map<string, { rx: number; tx: number }>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const fields = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    // Receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes ...
    if (fields.length < 16 || !Number.isFinite(fields[0]) || !Number.isFinite(fields[8])) continue;
    out.set(name, { rx: fields[0]!, tx: fields[8]! });
  }
  return out;
}

export interface LinkPort {
  host: string;
  /** The bridge-side interface of the host's link: what it transmits the host received. */
  port: string;
}

/** Samples the counters of `ports` in the namespace of process `pid` until stop(). */
export class LinkSampler {
  private readonly samples: { t: number; counters: Map<string, { rx: number; tx: number }>; cpu: { busy: number; total: number } | undefined }[] = [];
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly pid: number,
    private readonly ports: readonly LinkPort[],
    private readonly intervalMs = 100,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    try {
      const counters = parseNetDev(readFileSync(`/proc/${this.pid}/net/dev`, 'utf8'));
      this.samples.push({ t: Date.now(), counters, cpu: parseProcStat(readFileSync('/proc/stat', 'utf8')) });
    } catch {
      // The holder is gone (the bed is closing): the series ends here.
    }
  }

  /**
   * Stops sampling (idempotent) and returns the series: per-interval deltas from the host's side of
   * each link, times from `origin` (Date.now() of the run's start).
   */
  stop(origin: number): LinkSeries {
    if (!this.stopped) {
      clearInterval(this.timer);
      this.sample();
      this.stopped = true;
    }
    const s = this.samples;
    const series: LinkSeries = { intervalMs: this.intervalMs, startMs: s.length > 0 ? s[0]!.t - origin : 0, hosts: this.ports.map((p) => p.host), rxBytes: [], txBytes: [], cpuBusy: [] };
    for (let i = 1; i < s.length; i++) {
      const prev = s[i - 1]!.counters;
      const cur = s[i]!.counters;
      // The bridge port transmits what its host receives and receives what its host sends.
      const delta = (p: LinkPort, dir: 'rx' | 'tx'): number => Math.max(0, (cur.get(p.port)?.[dir] ?? 0) - (prev.get(p.port)?.[dir] ?? 0));
      series.rxBytes.push(this.ports.map((p) => delta(p, 'tx')));
      series.txBytes.push(this.ports.map((p) => delta(p, 'rx')));
      const [a, b] = [s[i - 1]!.cpu, s[i]!.cpu];
      const ticks = a && b ? b.total - a.total : 0;
      series.cpuBusy!.push(ticks > 0 ? Math.min(1, Math.max(0, (b!.busy - a!.busy) / ticks)) : NaN);
    }
    return series;
  }
}

export interface SwarmFigures {
  /** Seconds from the origin until the peers together received at half the rate of their downlinks (over 300 ms). */
  halfRateS: number;
  /** The peers' received bytes until all-done / what their downlinks could carry in that time, %. */
  linkUsePct: number;
  /** Seconds from the servers' last busy interval (together sending >= 10 % of one link) to all-done. */
  tailS: number;
  /** The share of the run (its intervals until all-done) in which the machine's cores were at least CPU_BOUND_BUSY busy, %; NaN without a CPU series. */
  cpuBoundPct: number;
}

/** Cores this busy (a share of the machine's CPU time) in an interval: the interval was bound by the CPU. */
export const CPU_BOUND_BUSY = 0.95;

const HALF_RATE_WINDOW_MS = 300;
const SERVER_BUSY_FRACTION = 0.1;

/**
 * What the series says of a swarm: `peers` and `servers` are host names in it, `linkBytesPerS` the
 * downlink of each peer. NaN where the series cannot tell (e.g. the peers never reached half rate).
 */
export function swarmFigures(series: LinkSeries, peers: readonly string[], servers: readonly string[], linkBytesPerS: number, allDoneS: number): SwarmFigures {
  const idx = (names: readonly string[]): number[] => names.map((n) => series.hosts.indexOf(n)).filter((i) => i >= 0);
  const peerIdx = idx(peers);
  const serverIdx = idx(servers);
  const sec = series.intervalMs / 1000;
  const endOf = (i: number): number => (series.startMs + (i + 1) * series.intervalMs) / 1000;
  const peerRx = series.rxBytes.map((row) => peerIdx.reduce((s, h) => s + row[h]!, 0));
  const window = Math.max(1, Math.round(HALF_RATE_WINDOW_MS / series.intervalMs));
  const halfRate = (peerIdx.length * linkBytesPerS) / 2;
  let halfRateS = NaN;
  let sum = 0;
  for (let i = 0; i < peerRx.length; i++) {
    sum += peerRx[i]! - (i >= window ? peerRx[i - window]! : 0);
    if (i + 1 >= window && sum / (window * sec) >= halfRate) {
      halfRateS = endOf(i);
      break;
    }
  }
  let received = 0;
  for (let i = 0; i < peerRx.length && endOf(i) <= allDoneS + sec / 2; i++) received += peerRx[i]!;
  const linkUsePct = allDoneS > 0 && peerIdx.length > 0 ? (100 * received) / (peerIdx.length * linkBytesPerS * allDoneS) : NaN;
  let lastBusy = -1;
  for (let i = 0; i < series.txBytes.length; i++) {
    const sent = serverIdx.reduce((s, h) => s + series.txBytes[i]![h]!, 0);
    if (sent / sec >= SERVER_BUSY_FRACTION * linkBytesPerS && endOf(i) <= allDoneS + sec / 2) lastBusy = i;
  }
  let intervals = 0;
  let bound = 0;
  for (let i = 0; i < (series.cpuBusy?.length ?? 0) && endOf(i) <= allDoneS + sec / 2; i++) {
    const busy = series.cpuBusy![i]!;
    if (!Number.isFinite(busy) || endOf(i) <= 0) continue;
    intervals++;
    if (busy >= CPU_BOUND_BUSY) bound++;
  }
  return { halfRateS, linkUsePct, tailS: lastBusy >= 0 ? allDoneS - endOf(lastBusy) : NaN, cpuBoundPct: intervals > 0 ? (100 * bound) / intervals : NaN };
}
