// Baseline (b): a pull-through cache (distribution in proxy mode) on the supernode host; every host
// pulls from it, and it fetches from the origin registry. Fresh cache storage for each scenario.
import { join } from 'node:path';
import type { Host } from '../../testbed/testbed.ts';
import { skopeoPull } from '../ns-tools.ts';
import { startRegistry, type RegistryDaemon } from '../registry-daemon.ts';
import type { DaemonUsage, FanoutContext, FanoutSystem, PullOutcome } from '../system.ts';

export class ProxyCacheSystem implements FanoutSystem {
  readonly name = 'proxy-cache';
  readonly servesManyPulls = true;
  readonly description = 'pull-through cache (docker-registry proxy mode) on the supernode host';
  private cache: RegistryDaemon | undefined;
  private cacheName = '';
  private usage: DaemonUsage = {};
  /** The cache's output of the last scenario (its request log). */
  private lastOutput: string | undefined;

  async unavailableReason(): Promise<string | undefined> {
    return undefined;
  }

  async prepare(ctx: FanoutContext): Promise<void> {
    this.usage = {};
    this.cacheName = `cache@${ctx.supernode.name}`;
    this.cache = await startRegistry(ctx.bed, ctx.supernode, join(ctx.workDir, 'proxy-cache'), { proxyRemote: `http://${ctx.registryAddr}` });
  }

  pull(ctx: FanoutContext, host: Host, t0: number): Promise<PullOutcome> {
    if (!this.cache) throw new Error('proxy-cache: prepare() was not called');
    return skopeoPull(ctx.bed, host, ctx.image, ctx.workDir, t0, ctx.pullTimeoutMs, { from: this.cache.addr });
  }

  logs(): Record<string, string> {
    return this.lastOutput === undefined ? {} : { [this.cacheName]: this.lastOutput };
  }

  usageNow(): DaemonUsage {
    return this.cache ? { [this.cacheName]: this.cache.proc.usage() } : {};
  }

  async finish(): Promise<DaemonUsage> {
    if (this.cache) {
      this.usage[this.cacheName] = await this.cache.proc.stop();
      this.lastOutput = this.cache.proc.output();
      this.cache = undefined;
    }
    return this.usage;
  }
}
