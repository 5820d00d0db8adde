// Baseline (a): every host pulls straight from the origin registry.
import type { Host } from '../../testbed/testbed.ts';
import { skopeoPull } from '../ns-tools.ts';
import type { DaemonUsage, FanoutContext, FanoutSystem, PullOutcome } from '../system.ts';

export class DirectSystem implements FanoutSystem {
  readonly name = 'direct';
  readonly description = 'every host pulls from the registry (skopeo)';

  async unavailableReason(): Promise<string | undefined> {
    return undefined;
  }

  async prepare(): Promise<void> {}

  pull(ctx: FanoutContext, host: Host, t0: number): Promise<PullOutcome> {
    return skopeoPull(ctx.bed, host, ctx.image, ctx.workDir, t0, ctx.pullTimeoutMs, { from: ctx.registryAddr });
  }

  async finish(): Promise<DaemonUsage> {
    return {};
  }

  usageNow(): DaemonUsage {
    return {};
  }
}
