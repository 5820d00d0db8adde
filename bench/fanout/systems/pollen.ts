// System (d): Pollen. THE INTEGRATION POINT for the P2P layer: `pollen supernode` on the supernode
// host, `pollen peer` on every peer host (its mirror on 127.0.0.1:65001 inside that host, its wire
// on the host's address), and skopeo pulling through the local peer as its registry mirror.
// It is written against the CLI of the P2P design (flags below); until `pollen peer` exists in
// this build, unavailableReason() says so and the runner reports the system as not run.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../testbed/exec.ts';
import type { NsProcess } from '../../testbed/ns-process.ts';
import type { Host } from '../../testbed/testbed.ts';
import { skopeoPull, waitHttp } from '../ns-tools.ts';
import type { DaemonUsage, FanoutContext, FanoutSystem, PullOutcome } from '../system.ts';

const SUPERNODE_PORT = 8002;
const MIRROR_ADDR = '127.0.0.1:65001';
const WIRE_PORT = 65002;
/** Cluster secret of the benchmark's peers (a fresh test bed each run; not a credential of anything else). */
const BENCH_SECRET = 'pollen-bench-fanout';

export class PollenSystem implements FanoutSystem {
  readonly name = 'pollen';
  readonly description = 'pollen supernode on the supernode host, pollen peer on every host, skopeo through the local peer';
  private procs = new Map<string, NsProcess>();

  async unavailableReason(repoRoot: string): Promise<string | undefined> {
    const help = await run(process.execPath, [join(repoRoot, 'bin', 'pollen.js'), '--help'], { allowFail: true });
    for (const cmd of ['supernode', 'peer']) {
      if (!new RegExp(`^\\s+${cmd}\\b`, 'm').test(help)) return `\`pollen ${cmd}\` is not a command of this build (the P2P layer has not landed yet)`;
    }
    return undefined;
  }

  private pollen(ctx: FanoutContext): string[] {
    return [join(ctx.repoRoot, 'bin', 'pollen.js')];
  }

  async prepare(ctx: FanoutContext): Promise<void> {
    this.procs = new Map();
    const dir = join(ctx.workDir, 'pollen');
    await mkdir(dir, { recursive: true });
    const supernodeUrl = `http://${ctx.supernode.ip}:${SUPERNODE_PORT}`;
    const sn = ctx.bed.spawn(
      ctx.supernode,
      process.execPath,
      [...this.pollen(ctx), 'supernode', '--listen', `${ctx.supernode.ip}:${SUPERNODE_PORT}`, '--data', join(dir, 'supernode'), '--log-level', 'warn'],
      { cwd: ctx.repoRoot },
    );
    this.procs.set(`supernode@${ctx.supernode.name}`, sn);
    await waitHttp(ctx.bed, ctx.supernode, supernodeUrl).catch((err: Error) => {
      throw new Error(`pollen supernode did not start: ${err.message}\n${sn.output().slice(-2000)}`);
    });
    // Peers start one after another (tsx start-up is CPU-bound); all are up before the pulls start.
    for (const host of ctx.peers) {
      const peer = ctx.bed.spawn(
        host,
        process.execPath,
        [
          ...this.pollen(ctx),
          'peer',
          '--listen',
          MIRROR_ADDR,
          '--data',
          join(dir, `peer-${host.name}`),
          '--upstream',
          `http://${ctx.registryAddr}`,
          '--supernode',
          supernodeUrl,
          '--wire',
          `${host.ip}:${WIRE_PORT}`,
          '--secret',
          BENCH_SECRET,
          '--log-level',
          'warn',
        ],
        { cwd: ctx.repoRoot },
      );
      this.procs.set(`peer@${host.name}`, peer);
      await waitHttp(ctx.bed, host, `http://${MIRROR_ADDR}/v2/`).catch((err: Error) => {
        throw new Error(`pollen peer did not start on ${host.name}: ${err.message}\n${peer.output().slice(-2000)}`);
      });
    }
  }

  pull(ctx: FanoutContext, host: Host, t0: number): Promise<PullOutcome> {
    return skopeoPull(ctx.bed, host, ctx.image, ctx.workDir, t0, ctx.pullTimeoutMs, { from: ctx.registryAddr, mirror: MIRROR_ADDR });
  }

  async finish(): Promise<DaemonUsage> {
    const usage: DaemonUsage = {};
    for (const [name, proc] of [...this.procs].reverse()) usage[name] = await proc.stop(5000);
    this.procs.clear();
    return usage;
  }
}
