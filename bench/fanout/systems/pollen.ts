// System (d): Pollen. THE INTEGRATION POINT for the P2P layer: `pollen supernode` on the supernode
// host, `pollen peer` on every peer host (its mirror on 127.0.0.1:65001 inside that host, its wire
// on the host's address), and skopeo pulling through the local peer as its registry mirror.
// It is written against the CLI of the p2p branch (flags below); until `pollen peer` of this build
// has them, unavailableReason() says so and the runner reports the system as not run.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { withMallocTunables } from '../../../src/malloc-tunables.ts';
import { run } from '../../testbed/exec.ts';
import type { NsProcess } from '../../testbed/ns-process.ts';
import type { Host } from '../../testbed/testbed.ts';
import { skopeoPull, waitHttp } from '../ns-tools.ts';
import { lastBlobServedMs, transferSummaryFromLogs, type TransferSummary } from '../pollen-stats.ts';
import type { DaemonUsage, FanoutContext, FanoutSystem, PullOutcome } from '../system.ts';

const SUPERNODE_PORT = 8002;
/** The supernode's admin listener (health), on loopback inside the supernode's host. */
const SUPERNODE_ADMIN = '127.0.0.1:8003';
const MIRROR_ADDR = '127.0.0.1:65001';
const WIRE_PORT = 65002;
/**
 * Cluster secret of the benchmark's peers (a fresh test bed each run; not a credential of anything
 * else). Strong enough for a listener off loopback (at least 32 varied characters).
 */
const BENCH_SECRET = 'pollen-bench-fanout-testbed-cluster-secret';

export interface LaunchSpec {
  cmd: string;
  args: string[];
  /** What answers HTTP once the daemon is up, from inside its host (default: the address it serves). */
  healthUrl?: string;
}

/** How the supernode and the peers are started; the default runs this build's `pollen` CLI. */
export interface PollenLaunch {
  supernode(ctx: FanoutContext, listen: string, dataDir: string): Promise<LaunchSpec>;
  peer(ctx: FanoutContext, host: Host, options: { listen: string; dataDir: string; upstream: string; supernodeUrl: string; wire: string }): Promise<LaunchSpec>;
}

/**
 * As in the test helpers: POLLEN_CPU_PROF_DIR=DIR, every daemon writes a V8 CPU profile there (node
 * --cpu-prof); POLLEN_NODE_FLAGS='--perf-basic-prof ...', more node/V8 flags (diagnosis only).
 */
const profArgs = (): string[] => [
  ...(process.env.POLLEN_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.POLLEN_CPU_PROF_DIR}`] : []),
  ...(process.env.POLLEN_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? []),
];

export const POLLEN_CLI_LAUNCH: PollenLaunch = {
  async supernode(ctx, listen, dataDir) {
    // The cluster API is TLS (keyed by the secret); health answers on the plain admin listener.
    return {
      cmd: process.execPath,
      args: [...profArgs(), join(ctx.repoRoot, 'bin', 'pollen.js'), 'supernode', '--listen', listen, '--admin-listen', SUPERNODE_ADMIN, '--data', dataDir, '--upstream', `http://${ctx.registryAddr}`, '--secret', BENCH_SECRET, '--log-level', 'info'],
      healthUrl: `http://${SUPERNODE_ADMIN}/healthz`,
    };
  },
  async peer(ctx, _host, o) {
    return {
      cmd: process.execPath,
      args: [...profArgs(), join(ctx.repoRoot, 'bin', 'pollen.js'), 'peer', '--listen', o.listen, '--data', o.dataDir, '--upstream', o.upstream, '--registry', `${ctx.registryAddr}=${o.upstream}`, '--supernode', o.supernodeUrl, '--wire', o.wire, '--secret', BENCH_SECRET, '--log-level', 'info'],
    };
  },
};

export class PollenSystem implements FanoutSystem {
  readonly name: string;
  readonly description = 'pollen supernode on the supernode host, pollen peer on every host, skopeo through the local peer';
  readonly servesManyPulls = true;
  private procs = new Map<string, NsProcess>();
  private stopped = new Map<string, NsProcess>();
  private readonly launch: PollenLaunch;

  /** `launch` replaces the pollen CLI (a test uses stand-ins to check the harness side of this system). */
  constructor(deps: { launch?: PollenLaunch; name?: string } = {}) {
    this.launch = deps.launch ?? POLLEN_CLI_LAUNCH;
    this.name = deps.name ?? 'pollen';
  }

  async unavailableReason(repoRoot: string): Promise<string | undefined> {
    if (this.launch !== POLLEN_CLI_LAUNCH) return undefined;
    const bin = join(repoRoot, 'bin', 'pollen.js');
    const help = await run(process.execPath, [bin, '--help'], { allowFail: true });
    for (const cmd of ['supernode', 'peer']) {
      if (!new RegExp(`^\\s+${cmd}\\b`, 'm').test(help)) return `\`pollen ${cmd}\` is not a command of this build (the P2P layer has not landed yet)`;
    }
    const peerHelp = await run(process.execPath, [bin, 'peer', '--help'], { allowFail: true });
    const missing = ['--supernode', '--wire', '--secret'].filter((f) => !peerHelp.includes(f));
    if (missing.length > 0) return `\`pollen peer\` of this build has no ${missing.join(', ')} (the P2P layer has not landed yet)`;
    return undefined;
  }

  async prepare(ctx: FanoutContext): Promise<void> {
    this.procs = new Map();
    this.stopped = new Map();
    const dir = join(ctx.workDir, 'pollen');
    await mkdir(dir, { recursive: true });
    const supernodeUrl = `http://${ctx.supernode.ip}:${SUPERNODE_PORT}`;
    const snSpec = await this.launch.supernode(ctx, `${ctx.supernode.ip}:${SUPERNODE_PORT}`, join(dir, 'supernode'));
    const sn = ctx.bed.spawn(ctx.supernode, snSpec.cmd, snSpec.args, { cwd: ctx.repoRoot, env: withMallocTunables(process.env) });
    this.procs.set(`supernode@${ctx.supernode.name}`, sn);
    await waitHttp(ctx.bed, ctx.supernode, snSpec.healthUrl ?? supernodeUrl).catch((err: Error) => {
      throw new Error(`${this.name} supernode did not start: ${err.message}\n${sn.output().slice(-2000)}`);
    });
    // Peers start one after another (start-up is CPU-bound); all are up before the pulls start.
    for (const host of ctx.peers) {
      const spec = await this.launch.peer(ctx, host, {
        listen: MIRROR_ADDR,
        dataDir: join(dir, `peer-${host.name}`),
        upstream: `http://${ctx.registryAddr}`,
        supernodeUrl,
        wire: `${host.ip}:${WIRE_PORT}`,
      });
      const peer = ctx.bed.spawn(host, spec.cmd, spec.args, { cwd: ctx.repoRoot, env: withMallocTunables(process.env) });
      this.procs.set(`peer@${host.name}`, peer);
      await waitHttp(ctx.bed, host, `http://${MIRROR_ADDR}/v2/`).catch((err: Error) => {
        throw new Error(`${this.name} peer did not start on ${host.name}: ${err.message}\n${peer.output().slice(-2000)}`);
      });
    }
  }

  pull(ctx: FanoutContext, host: Host, t0: number): Promise<PullOutcome> {
    return skopeoPull(ctx.bed, host, ctx.image, ctx.workDir, t0, ctx.pullTimeoutMs, { from: ctx.registryAddr, mirror: MIRROR_ADDR });
  }

  logs(): Record<string, string> {
    return Object.fromEntries([...this.stopped].map(([name, proc]) => [name, proc.output()]));
  }

  /** The peers' 'blob committed' lines of the last scenario, summed, and the supernode's seed grants (undefined before any peer stopped). */
  transferSummary(): TransferSummary | undefined {
    const peers = [...this.stopped].filter(([name]) => name.startsWith('peer@')).map(([, proc]) => proc.output());
    const supernode = [...this.stopped].filter(([name]) => name.startsWith('supernode@')).map(([, proc]) => proc.output());
    return peers.length > 0 ? transferSummaryFromLogs([...peers, ...supernode]) : undefined;
  }

  /** When each host's peer served its client the last blob byte (epoch ms), from the logs of the stopped peers. */
  servedAt(): Record<string, number> {
    const at: Record<string, number> = {};
    for (const [name, proc] of this.stopped) {
      if (!name.startsWith('peer@')) continue;
      const ms = lastBlobServedMs(proc.output());
      if (ms !== undefined) at[name.slice('peer@'.length)] = ms;
    }
    return at;
  }

  usageNow(): DaemonUsage {
    return Object.fromEntries([...this.procs].map(([name, proc]) => [name, proc.usage()]));
  }

  async finish(): Promise<DaemonUsage> {
    const usage: DaemonUsage = {};
    for (const [name, proc] of [...this.procs].reverse()) usage[name] = await proc.stop(5000);
    for (const [name, proc] of this.procs) this.stopped.set(name, proc);
    this.procs.clear();
    return usage;
  }
}
