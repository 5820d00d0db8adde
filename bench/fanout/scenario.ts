// One fan-out scenario: one system, N peer hosts, one image. Prepares the system, starts all N
// pulls at the same instant, and records per host the completion time, the bytes received from the
// registry host, the supernode host and other peers, and the client's CPU and peak RSS; plus the
// registry's and supernode's egress and the usage of every daemon.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LinkSampler, LinkSeries } from '../testbed/link-series.ts';
import type { NsProcess } from '../testbed/ns-process.ts';
import { counterDelta, type HostCounters } from '../testbed/shaping.ts';
import type { Host, Testbed } from '../testbed/testbed.ts';
import { touchMemory } from '../testbed/touch-memory.ts';
import type { BenchImage } from './image.ts';
import type { TransferSummary } from './pollen-stats.ts';
import type { DaemonUsage, FanoutContext, FanoutSystem, PullOutcome } from './system.ts';

export interface HostResult {
  host: string;
  ok: boolean;
  seconds: number;
  rxBytes: number;
  /** Packets received and sent on the host's link (absent in reports from before they were counted). */
  rxPackets?: number;
  txPackets?: number;
  /** Bytes the host's download shaper passed on, every segment's headers counted (HostCounters.deliveredBytes); absent in older reports. */
  deliveredBytes?: number;
  /** Packets the host's download shaper dropped (TCP sent them again); absent in older reports. */
  downDrops?: number;
  fromRegistry: number;
  fromSupernode: number;
  fromPeers: number;
  txBytes: number;
  clientCpuS: number;
  /** The client is one of the daemons too (aria2c), so totalCpuS counts it there only. */
  clientIsDaemon?: boolean;
  clientMaxRssMiB: number;
  /**
   * When the host's daemon served its client the image's last byte, s since the pulls started
   * (Pollen: its peer's last blob answered); `seconds` - `servedS` is the client's own work after
   * it (skopeo checks and fsyncs each blob). Absent for systems without a serving daemon.
   */
  servedS?: number;
  error?: string | undefined;
  /** The client pulled again after this error (see PullOutcome.retriedAfter). */
  retriedAfter?: string;
}

export interface ScenarioResult {
  system: string;
  /** Which run of its (S, N) this is, with --runs above 1 (1-based). */
  run?: number;
  n: number;
  sizeMiB: number;
  imageBytes: number;
  lowerBoundS: number;
  /** Time until the last host had the image (NaN if any host failed). */
  allDoneS: number;
  medianS: number;
  /** With --warm-up, for a system that serves many pulls: when the last host had the warm-up image (s). */
  warmUpS?: number;
  registryEgressBytes: number;
  supernodeEgressBytes: number;
  registryCpuS: number;
  hosts: HostResult[];
  /**
   * The long-running processes: CPU s from the common start of the pulls until they were stopped
   * (`cpuS`; a process started during the pulls, e.g. aria2c, counts whole), and over their whole
   * life (`lifeCpuS`: with start-up, e.g. node loading its modules); `sysS` is the kernel's part of
   * `cpuS` (network stack, disk writes).
   */
  daemons: Record<string, { cpuS: number; sysS?: number; lifeCpuS: number; maxRssMiB: number }>;
  /** Every host's link, per 100 ms from the pulls' common start until the last ended (absent in reports from before it was sampled). */
  series?: LinkSeries;
  /** What the system's peers counted of their transfers (Pollen only). */
  transfer?: TransferSummary | undefined;
  /** Set when the system did not run (unavailable) or the scenario failed as a whole. */
  error?: string | undefined;
}

export interface ScenarioInput {
  bed: Testbed;
  system: FanoutSystem;
  registryHost: Host;
  supernodeHost: Host;
  peers: readonly Host[];
  registryAddr: string;
  registryProc: NsProcess;
  image: BenchImage;
  lowerBoundS: number;
  pullTimeoutMs: number;
  repoRoot: string;
  /** Pulled through every host's daemons before the measured pull (systems that serve many pulls). */
  warmImage?: BenchImage | undefined;
  /** Where to write the daemons' output (logs/<system>-n<N>-s<S>-<daemon>.log). */
  logDir?: string | undefined;
}

const KIB_PER_MIB = 1024;

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** CPU s the whole system spent on the pulls: its daemons' (cpuS) and its clients that are not daemons (aria2c is both: once). */
export function totalCpuS(r: ScenarioResult): number {
  return Object.values(r.daemons).reduce((s, d) => s + d.cpuS, 0) + r.hosts.reduce((s, h) => s + (h.clientIsDaemon ? 0 : h.clientCpuS), 0);
}

export async function runScenario(input: ScenarioInput): Promise<ScenarioResult> {
  const { bed, system, image } = input;
  const base: ScenarioResult = {
    system: system.name,
    n: input.peers.length,
    sizeMiB: image.sizeMiB,
    imageBytes: image.totalBytes,
    lowerBoundS: input.lowerBoundS,
    allDoneS: NaN,
    medianS: NaN,
    registryEgressBytes: 0,
    supernodeEgressBytes: 0,
    registryCpuS: 0,
    hosts: [],
    daemons: {},
  };
  const workDir = join(bed.workDir, `${system.name}-n${input.peers.length}-s${image.sizeMiB}`);
  await mkdir(workDir, { recursive: true });
  const ctx: FanoutContext = {
    bed,
    registry: input.registryHost,
    supernode: input.supernodeHost,
    peers: input.peers,
    registryAddr: input.registryAddr,
    image,
    workDir,
    repoRoot: input.repoRoot,
    pullTimeoutMs: input.pullTimeoutMs,
  };
  let daemons: DaemonUsage = {};
  let atStart: DaemonUsage = {};
  let sampler: LinkSampler | undefined;
  let t0 = Date.now();
  try {
    await system.prepare(ctx);
    const warm = input.warmImage;
    if (warm && system.servesManyPulls) {
      const warmCtx = { ...ctx, image: warm, workDir: join(workDir, 'warm-up') };
      await mkdir(warmCtx.workDir, { recursive: true });
      const warmed = await Promise.all(input.peers.map((h) => system.pull(warmCtx, h, Date.now())));
      const failed = warmed.find((o) => !o.ok);
      if (failed) throw new Error(`warm-up pull failed: ${failed.error ?? 'unknown error'}`);
      base.warmUpS = Math.max(...warmed.map((o) => o.seconds));
    }
    // At most what the pulls keep (each host's store and its engine's copy, and the seed's), so that
    // every system writes into touched memory, whichever ran before it (../testbed/touch-memory.ts).
    await touchMemory(workDir, (2 * input.peers.length + 1) * image.totalBytes);
    const regCpu0 = input.registryProc.usage().cpuSeconds;
    atStart = system.usageNow();
    sampler = await bed.sampleLinks([input.registryHost, input.supernodeHost, ...input.peers]);
    const before = await bed.counters();
    t0 = Date.now();
    const outcomes: PullOutcome[] = await Promise.all(input.peers.map((h) => system.pull(ctx, h, t0)));
    base.series = sampler.stop(t0);
    const after = await bed.counters();
    base.registryCpuS = input.registryProc.usage().cpuSeconds - regCpu0;
    daemons = await system.finish(ctx);
    const delta = (h: Host): HostCounters => counterDelta(after.get(h.name)!, before.get(h.name)!);
    base.registryEgressBytes = delta(input.registryHost).txBytes;
    base.supernodeEgressBytes = delta(input.supernodeHost).txBytes;
    base.hosts = input.peers.map((h, i) => {
      const o = outcomes[i]!;
      const d = delta(h);
      return {
        host: h.name,
        ok: o.ok,
        seconds: o.seconds,
        rxBytes: d.rxBytes,
        rxPackets: d.rxPackets,
        deliveredBytes: d.deliveredBytes,
        downDrops: d.downDrops,
        txPackets: d.txPackets,
        fromRegistry: d.rxFrom[input.registryHost.name] ?? 0,
        fromSupernode: d.rxFrom[input.supernodeHost.name] ?? 0,
        fromPeers: d.rxFrom.other ?? 0,
        txBytes: d.txBytes,
        clientCpuS: o.client.cpuSeconds,
        ...(o.clientIsDaemon ? { clientIsDaemon: true } : {}),
        clientMaxRssMiB: o.client.maxRssKiB / KIB_PER_MIB,
        error: o.error,
        ...(o.retriedAfter ? { retriedAfter: o.retriedAfter.slice(0, 500) } : {}),
      };
    });
    const times = base.hosts.map((h) => h.seconds);
    base.allDoneS = base.hosts.every((h) => h.ok) ? Math.max(...times) : NaN;
    base.medianS = median(times);
    const failed = base.hosts.filter((h) => !h.ok);
    if (failed.length > 0) base.error = `${failed.length} of ${base.hosts.length} pulls failed; first: ${failed[0]!.host}: ${failed[0]!.error ?? ''}`;
  } catch (err) {
    base.error = (err as Error).message.slice(0, 4000);
  } finally {
    base.series ??= sampler?.stop(t0);
    const more = await system.finish(ctx).catch(() => ({}));
    daemons = { ...daemons, ...more };
    base.transfer = system.transferSummary?.();
    const served = system.servedAt?.() ?? {};
    for (const h of base.hosts) if (served[h.host] !== undefined) h.servedS = (served[h.host]! - t0) / 1000;
    if (input.logDir) await writeLogs(input.logDir, `${system.name}-n${base.n}-s${base.sizeMiB}`, system.logs?.() ?? {});
    await rm(workDir, { recursive: true, force: true });
  }
  for (const [k, u] of Object.entries(daemons)) base.daemons[k] = { cpuS: u.cpuSeconds - (atStart[k]?.cpuSeconds ?? 0), sysS: u.systemSeconds - (atStart[k]?.systemSeconds ?? 0), lifeCpuS: u.cpuSeconds, maxRssMiB: u.maxRssKiB / KIB_PER_MIB };
  return base;
}

async function writeLogs(dir: string, prefix: string, logs: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(logs)) await writeFile(join(dir, `${prefix}-${name.replace(/[^\w.-]/g, '_')}.log`), text);
}
