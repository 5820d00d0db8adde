// CPU seconds and peak RSS of processes, read from /proc (for daemons, sampled just before they are
// stopped) or from GNU time's output (for clients that exit by themselves).
import { readdirSync, readFileSync } from 'node:fs';

/** Linux reports utime/stime in clock ticks; USER_HZ is 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_S = 100;

export interface ProcessUsage {
  /** user + system CPU seconds, including reaped children's. */
  cpuSeconds: number;
  /** The system (kernel) part of cpuSeconds: on the bed, mostly the network stack and disk writes. */
  systemSeconds: number;
  /** Peak resident set size in KiB (VmHWM; summed over the live process tree). */
  maxRssKiB: number;
}

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime. */
  ticks: number;
  userTicks: number;
  systemTicks: number;
  childSystemTicks: number;
  minorFaults: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const num = (i: number): number => Number(rest[i] ?? 0);
  // rest[0] is field 3 (state): ppid is field 4, minflt is 10, utime..cstime are fields 14..17.
  return { pid, ppid: num(1), ticks: num(11) + num(12) + num(13) + num(14), userTicks: num(11), systemTicks: num(12), childSystemTicks: num(14), minorFaults: num(7) };
}

/** User and system CPU seconds and minor page faults of one live process so far (its own, not its children's). */
export function cpuDetail(pid: number): { userS: number; systemS: number; minorFaults: number } | undefined {
  const st = readStat(pid);
  return st && { userS: st.userTicks / CLOCK_TICKS_PER_S, systemS: st.systemTicks / CLOCK_TICKS_PER_S, minorFaults: st.minorFaults };
}

function readHwmKiB(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The pid and every live descendant of it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(st.pid);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Usage of a live process and its descendants now (zero if it is gone). */
export function sampleUsage(pid: number): ProcessUsage {
  let ticks = 0;
  let systemTicks = 0;
  let rss = 0;
  for (const p of processTree(pid)) {
    const st = readStat(p);
    if (!st) continue;
    ticks += st.ticks;
    systemTicks += st.systemTicks + st.childSystemTicks;
    rss += readHwmKiB(p);
  }
  return { cpuSeconds: ticks / CLOCK_TICKS_PER_S, systemSeconds: systemTicks / CLOCK_TICKS_PER_S, maxRssKiB: rss };
}

/** CPU seconds the whole machine has been busy since boot (all cores: user, nice, system, irq, softirq, steal). */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / CLOCK_TICKS_PER_S;
}

/** GNU time format the test bed uses: `%e %U %S %M` (wall s, user s, system s, max RSS KiB). */
export const GNU_TIME_FORMAT = 'pollen-usage %e %U %S %M';

export function parseGnuTime(text: string): ProcessUsage | undefined {
  const m = /pollen-usage ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(text);
  if (!m) return undefined;
  return { cpuSeconds: Number(m[2]) + Number(m[3]), systemSeconds: Number(m[3]), maxRssKiB: Number(m[4]) };
}
