// Real Pollen daemons as child processes (`node bin/pollen.js ...`), on random loopback ports.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../cli/package-root.ts';
import { withMallocTunables } from '../../src/malloc-tunables.ts';
import { freePort, httpOk, spawnLogged, stopProcess, waitFor } from './tools.ts';

/** The `pollen` command of this checkout: it runs the compiled daemons in dist/ (`npm run build`). */
export const POLLEN_BIN = join(packageRoot(import.meta.dirname), 'bin', 'pollen.js');

/** The line each daemon logs once all its listeners are bound (peer/peer.ts, supernode/supernode.ts). */
const READY_LINE: Record<string, string> = { supernode: '"msg":"supernode listening"', peer: '"msg":"peer mirror listening"', start: '"msg":"peer mirror listening"' };

export class PollenProcess {
  private constructor(
    readonly url: string,
    /** Where /healthz answers: a supernode's admin listener (jobs API, stats), a peer's metrics listener, else `url`. */
    readonly adminUrl: string,
    readonly dataDir: string,
    private readonly child: ChildProcess,
    readonly output: () => string,
    private readonly ownsData: boolean,
  ) {}

  /** Starts `pollen peer` with the given extra arguments; `--listen` and `--data` are chosen here unless given. */
  static async peer(args: string[], options: { dataDir?: string; env?: NodeJS.ProcessEnv } = {}): Promise<PollenProcess> {
    return PollenProcess.spawn('peer', args, options);
  }

  static async spawn(command: string, args: string[], options: { dataDir?: string; env?: NodeJS.ProcessEnv; port?: number } = {}): Promise<PollenProcess> {
    // A port found free can be taken before the daemon binds it (another test's outgoing
    // connection); the daemon then exits with EADDRINUSE, and a port chosen here is chosen again.
    for (let attempt = 1; ; attempt++) {
      try {
        return await PollenProcess.spawnOnce(command, args, options);
      } catch (err) {
        if (options.port !== undefined || attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
      }
    }
  }

  private static async spawnOnce(command: string, args: string[], options: { dataDir?: string; env?: NodeJS.ProcessEnv; port?: number }): Promise<PollenProcess> {
    const port = options.port ?? (await freePort());
    const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), `pollen-${command}-`)));
    // The supernode serves health, stats and the jobs API on its plain-HTTP admin listener (its
    // `--listen` is the cluster API, TLS when it has a secret); a peer serves /metrics, /healthz
    // and the GC route on its metrics listener, off the mirror port.
    const ownAdmin = command === 'supernode' || command === 'peer' || command === 'start';
    const adminPort = ownAdmin ? await freePort() : port;
    const adminArgs = !ownAdmin ? [] : command === 'supernode' ? ['--admin-listen', `127.0.0.1:${adminPort}`] : ['--metrics-listen', `127.0.0.1:${adminPort}`];
    // POLLEN_CPU_PROF_DIR=DIR: every daemon writes a V8 CPU profile there (node --cpu-prof), for
    // the benches that run on these helpers (bench:peer-cpu, bench:p2p).
    // POLLEN_NODE_FLAGS='--trace-gc ...': more node/V8 flags for every daemon (diagnosis only).
    const prof = [...(process.env.POLLEN_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.POLLEN_CPU_PROF_DIR}`] : []), ...(process.env.POLLEN_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? [])];
    const { child, output } = spawnLogged(process.execPath, [...prof, POLLEN_BIN, command, '--listen', `127.0.0.1:${port}`, ...adminArgs, '--data', dataDir, '--log-level', 'debug', ...args], {
      env: withMallocTunables({ ...process.env, ...options.env }),
    });
    const url = `http://127.0.0.1:${port}`;
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    // Ready once the daemon itself logged that it listens (both its listeners bound) and its health
    // answers: a health check alone could be answered by another test's daemon that took the admin
    // port first, while this one exits with EADDRINUSE (CI once pulled through such a dead peer).
    const listening = READY_LINE[command];
    try {
      // A daemon that exits (a failed start) ends the wait at once, not after the timeout.
      await waitFor(async () => child.exitCode !== null || ((listening === undefined || output().includes(listening)) && (await httpOk(`${adminUrl}/healthz`))), `pollen ${command} on ${url}`, 60_000);
      // A peer opens its metrics listener after its mirror: healthy means both are up.
      if (child.exitCode !== null) throw new Error(`pollen ${command} exited with code ${child.exitCode}`);
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n${output()}`);
    }
    return new PollenProcess(url, adminUrl, dataDir, child, output, options.dataDir === undefined);
  }

  /** A peer's metrics listener (/metrics, /healthz, POST /api/v1/gc): its adminUrl. */
  get metricsUrl(): string {
    return this.adminUrl;
  }

  get host(): string {
    return this.url.replace(/^http:\/\//, '');
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async stop(options: { keepData?: boolean } = {}): Promise<void> {
    await stopProcess(this.child);
    if (this.ownsData && !options.keepData) await rm(this.dataDir, { recursive: true, force: true });
  }
}
