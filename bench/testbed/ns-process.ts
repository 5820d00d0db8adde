// A process running inside a test-bed host (spawned through `ip netns exec`, which execs the
// command in place, so the child's pid is the command's own pid).
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { parseGnuTime, processTree, sampleUsage, type ProcessUsage } from './process-stats.ts';

const OUTPUT_KEEP_CHARS = 1_000_000;

export class NsProcess {
  readonly exited: Promise<number | null>;
  private out = '';
  private lastUsage: ProcessUsage = { cpuSeconds: 0, systemSeconds: 0, maxRssKiB: 0 };

  constructor(
    readonly child: ChildProcess,
    readonly label: string,
  ) {
    const keep = (c: Buffer): void => {
      this.out += c.toString();
      if (this.out.length > OUTPUT_KEEP_CHARS) this.out = this.out.slice(-OUTPUT_KEEP_CHARS / 2);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        this.out += `\nspawn error: ${err.message}`;
        resolve(-1);
      });
      child.once('exit', (code) => resolve(code));
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.out;
  }

  /** CPU seconds and peak RSS of the process tree now (the last sample once it has exited). */
  usage(): ProcessUsage {
    if (this.running && this.pid > 0) {
      const u = sampleUsage(this.pid);
      if (u.cpuSeconds > 0 || u.maxRssKiB > 0) this.lastUsage = u;
    }
    return this.lastUsage;
  }

  /** Samples usage, then SIGTERM, then SIGKILL after the grace period; resolves with the final usage. */
  async stop(graceMs = 5000): Promise<ProcessUsage> {
    const usage = this.usage();
    if (!this.running) return usage;
    this.signalTree('SIGTERM');
    const timer = setTimeout(() => this.signalTree('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    return usage;
  }

  killNow(): void {
    if (this.running) this.signalTree('SIGKILL');
  }

  /** Signals the process and its descendants (a wrapper such as GNU time does not forward signals). */
  private signalTree(signal: NodeJS.Signals): void {
    if (!this.running || this.pid <= 0) return;
    for (const pid of processTree(this.pid).reverse()) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  }
}

export interface TimedResult {
  exitCode: number | null;
  /** Wall-clock milliseconds from spawn to exit, as the harness saw them. */
  wallMs: number;
  usage: ProcessUsage;
  output: string;
}

/** Waits for a GNU-time-wrapped process and reads its usage file; kills it after timeoutMs. */
export async function runTimed(proc: NsProcess, timeFile: string, timeoutMs?: number): Promise<TimedResult> {
  const t0 = performance.now();
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => void proc.stop(2000), timeoutMs);
  const exitCode = await proc.exited;
  const wallMs = performance.now() - t0;
  if (timer) clearTimeout(timer);
  const text = await readFile(timeFile, 'utf8').catch(() => '');
  return { exitCode, wallMs, usage: parseGnuTime(text) ?? { cpuSeconds: 0, systemSeconds: 0, maxRssKiB: 0 }, output: proc.output() };
}
