// The seam between the fan-out runner and the ways of getting an image onto N hosts: direct pulls,
// a pull-through cache, BitTorrent, Pollen. A system prepares its daemons, then the runner calls
// pull() for every peer host at once, then finish() stops everything and reports daemon usage.
import type { ProcessUsage } from '../testbed/process-stats.ts';
import type { Host, Testbed } from '../testbed/testbed.ts';
import type { BenchImage } from './image.ts';
import type { TransferSummary } from './pollen-stats.ts';

export interface FanoutContext {
  bed: Testbed;
  registry: Host;
  supernode: Host;
  /** The N peer hosts of this scenario. */
  peers: readonly Host[];
  /** host:port of the origin registry, as peers reach it. */
  registryAddr: string;
  image: BenchImage;
  /** Scratch directory of this scenario (removed afterwards). */
  workDir: string;
  /** Root of the Pollen checkout (for bin/pollen.js, which runs the compiled dist/). */
  repoRoot: string;
  /** A pull that takes longer than this fails. */
  pullTimeoutMs: number;
}

export interface PullOutcome {
  ok: boolean;
  /** Seconds from the common start to this host having the whole image. */
  seconds: number;
  /** The pulling client (skopeo, aria2c); for aria2c this includes seeding until finish(). */
  client: ProcessUsage;
  /** The client is also one of the system's daemons (aria2c): its CPU is in the daemons' already. */
  clientIsDaemon?: boolean;
  error?: string | undefined;
  /** The client's first attempt failed with this and it pulled again (a baseline's server error). */
  retriedAfter?: string | undefined;
}

/** Usage of the long-running processes of a system, by role and host (e.g. "peer@peer03"). */
export type DaemonUsage = Record<string, ProcessUsage>;

export interface FanoutSystem {
  readonly name: string;
  readonly description: string;
  /** Undefined when the system can run here, or why it cannot. */
  unavailableReason(repoRoot: string): Promise<string | undefined>;
  prepare(ctx: FanoutContext): Promise<void>;
  /**
   * The pulls go through daemons started in prepare() that would serve many pulls in use (a
   * registry mirror, a peer agent): with `--warm-up`, they first serve another image, so that the
   * measured pull is a long-running daemon's, not its first.
   */
  readonly servesManyPulls?: boolean;
  /** Pulls the image on one host; `t0` (Date.now()) is the common start of all pulls. */
  pull(ctx: FanoutContext, host: Host, t0: number): Promise<PullOutcome>;
  /** Stops every process the system started (idempotent) and reports their usage. */
  finish(ctx: FanoutContext): Promise<DaemonUsage>;
  /** The usage of the processes running now (sampled before the pulls start, so that their start-up is told apart). */
  usageNow(): DaemonUsage;
  /** The output of the daemons of the last scenario, by name (kept after finish(), for failure reports). */
  logs?(): Record<string, string>;
  /** After finish(): what the system's own peers counted of their transfers (Pollen's duplicates by cause, fallbacks, stalls, starved grants). */
  transferSummary?(): TransferSummary | undefined;
  /** After finish(): when each host's daemon served its client the image's last byte (epoch ms, by host name). */
  servedAt?(): Record<string, number>;
}
