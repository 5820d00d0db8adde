// A multi-host test bed on one machine: one network namespace per host, each with an eth0 whose
// veth peer sits on a bridge in a namespace of its own (nothing is added to the root namespace),
// per-host upload/download caps and byte counters (see shaping.ts), and processes run inside
// hosts with `ip netns exec`. Every name starts with a random per-run prefix, so parallel runs
// never collide and close() deletes only what this run created. Needs root.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerTeardown, unregisterTeardown, type Teardown } from './cleanup.ts';
import { findTool, requireRoot, run, runSync } from './exec.ts';
import { NsProcess, runTimed, type TimedResult } from './ns-process.ts';
import { LinkSampler } from './link-series.ts';
import { GNU_TIME_FORMAT } from './process-stats.ts';
import { HOST_IF, readCounters, shapeHost, type CountedSource, type HostCounters, type LinkCaps } from './shaping.ts';

const SUBNET_PREFIX = '10.77.0.';
const SUBNET_BITS = 24;
const MAX_HOSTS = 250;
const BRIDGE_IF = 'br0';

export interface HostSpec extends LinkCaps {
  /** Short host name: [a-z0-9-], unique in the test bed. */
  name: string;
  /**
   * Scheduling priority of every process started in the host (nice value, default 0). All hosts
   * share this machine's cores, where a real host would have its own: a shared server (registry,
   * supernode) among N busy peers and N clients got 1/(2N+1) of the CPU otherwise.
   */
  nice?: number;
}

export interface Host {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
  readonly index: number;
  readonly nice: number;
}

export interface TestbedOptions {
  /** Hosts whose traffic each host counts separately in rxFrom (e.g. the registry and supernode). */
  countedSources?: readonly string[];
  /** Name prefix for this run (default: `pb` + 6 random hex digits). */
  prefix?: string;
}

export class Testbed implements Teardown {
  readonly hosts: readonly Host[];
  readonly workDir: string;
  private readonly children = new Set<NsProcess>();
  private readonly sources: CountedSource[];
  private created: string[] = [];
  /** A process held in the bridge's namespace, through whose /proc entry the link samplers read its counters. */
  private bridgeHolder: NsProcess | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly prefix: string,
    private readonly specs: readonly HostSpec[],
    countedSources: readonly string[],
    private readonly ipBin: string,
    private readonly tcBin: string,
  ) {
    this.hosts = specs.map((s, i) => ({ name: s.name, ns: `${prefix}-${s.name}`, ip: `${SUBNET_PREFIX}${i + 2}`, index: i, nice: s.nice ?? 0 }));
    this.sources = countedSources.map((name) => ({ name, ip: this.host(name).ip }));
    this.workDir = mkdtempSync(join(tmpdir(), `pollen-testbed-${prefix}-`));
  }

  /** Builds the test bed. On any failure everything created so far is removed before the error is thrown. */
  static async create(specs: readonly HostSpec[], options: TestbedOptions = {}): Promise<Testbed> {
    requireRoot();
    const ipBin = findTool('ip', 'iproute2');
    const tcBin = findTool('tc', 'iproute2');
    if (specs.length === 0 || specs.length > MAX_HOSTS) throw new Error(`a test bed has 1 to ${MAX_HOSTS} hosts, got ${specs.length}`);
    const names = new Set<string>();
    for (const s of specs) {
      if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(s.name) || names.has(s.name)) throw new Error(`host names must be unique [a-z0-9-] (got "${s.name}")`);
      names.add(s.name);
    }
    const prefix = options.prefix ?? `pb${randomBytes(3).toString('hex')}`;
    if (!/^[a-z0-9]{2,12}$/.test(prefix)) throw new Error(`test bed prefix must be 2-12 [a-z0-9], got "${prefix}"`);
    const bed = new Testbed(prefix, specs, options.countedSources ?? [], ipBin, tcBin);
    registerTeardown(bed);
    try {
      await bed.build();
    } catch (err) {
      await bed.close();
      throw err;
    }
    return bed;
  }

  get bridgeNs(): string {
    return `${this.prefix}-br`;
  }

  host(name: string): Host {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host "${name}" in test bed ${this.prefix}`);
    return h;
  }

  private async build(): Promise<void> {
    const ip = this.ipBin;
    await this.addNs(this.bridgeNs);
    await run(ip, ['-n', this.bridgeNs, 'link', 'set', 'lo', 'up']);
    await run(ip, ['-n', this.bridgeNs, 'link', 'add', BRIDGE_IF, 'type', 'bridge']);
    await run(ip, ['-n', this.bridgeNs, 'link', 'set', BRIDGE_IF, 'up']);
    for (const h of this.hosts) {
      const spec = this.specs[h.index]!;
      await this.addNs(h.ns);
      const port = `v${h.index}`;
      await run(ip, ['-n', this.bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', HOST_IF, 'netns', h.ns]);
      await run(ip, ['-n', this.bridgeNs, 'link', 'set', port, 'master', BRIDGE_IF, 'up']);
      await run(ip, ['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await run(ip, ['-n', h.ns, 'addr', 'add', `${h.ip}/${SUBNET_BITS}`, 'dev', HOST_IF]);
      await run(ip, ['-n', h.ns, 'link', 'set', HOST_IF, 'up']);
      await shapeHost(this.tcBin, ip, h.ns, spec, this.sources.filter((s) => s.name !== h.name));
    }
  }

  private async addNs(ns: string): Promise<void> {
    await run(this.ipBin, ['netns', 'add', ns]);
    this.created.push(ns);
  }

  /** Counters of every host's link, by host name. */
  async counters(): Promise<Map<string, HostCounters>> {
    const out = new Map<string, HostCounters>();
    await Promise.all(
      this.hosts.map(async (h) => {
        out.set(h.name, await readCounters(this.tcBin, this.ipBin, h.ns, this.sources.filter((s) => s.name !== h.name)));
      }),
    );
    return out;
  }

  /** Starts sampling the link counters of `hosts` (default: all) each `intervalMs` (see link-series.ts). */
  async sampleLinks(hosts: readonly Host[] = this.hosts, intervalMs = 100): Promise<LinkSampler> {
    if (!this.bridgeHolder?.running) {
      const holder = this.track(spawn(this.ipBin, ['netns', 'exec', this.bridgeNs, findTool('sleep', 'coreutils'), 'infinity'], { stdio: ['ignore', 'pipe', 'pipe'] }), 'bridge: sleep');
      // `ip netns exec` enters the namespace, then execs: wait until the pid's namespace is the bridge's.
      const ours = netNsOf('self');
      for (let i = 0; i < 100 && holder.running && netNsOf(holder.pid) === ours; i++) await new Promise((r) => setTimeout(r, 10));
      if (!holder.running || netNsOf(holder.pid) === ours) throw new Error(`could not hold a process in the bridge namespace ${this.bridgeNs}: ${holder.output()}`);
      this.bridgeHolder = holder;
    }
    return new LinkSampler(this.bridgeHolder.pid, hosts.map((h) => ({ host: h.name, port: `v${h.index}` })), intervalMs);
  }

  private track(child: ChildProcess, label: string): NsProcess {
    const proc = new NsProcess(child, label);
    this.children.add(proc);
    void proc.exited.then(() => this.children.delete(proc));
    return proc;
  }

  /** Starts a long-running process inside a host; close() stops it if the caller did not. */
  spawn(host: Host, cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): NsProcess {
    const niced = host.nice === 0 ? [] : [findTool('nice', 'coreutils'), '-n', String(host.nice)];
    const child: ChildProcess = spawn(this.ipBin, ['netns', 'exec', host.ns, ...niced, cmd, ...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return this.track(child, `${host.name}: ${cmd}`);
  }

  /** Runs a command to completion inside a host, under GNU time: wall time, CPU seconds, peak RSS. */
  async runTimed(host: Host, cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<TimedResult> {
    const timeFile = join(this.workDir, `time-${host.name}-${randomBytes(4).toString('hex')}.txt`);
    const proc = this.spawn(host, findTool('/usr/bin/time', 'time'), ['-f', GNU_TIME_FORMAT, '-o', timeFile, cmd, ...args], options);
    return runTimed(proc, timeFile, options.timeoutMs);
  }

  /** Removes every process, namespace (and with them veths, ifbs, qdiscs) and file this run created. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.teardown();
    return this.closing;
  }

  private async teardown(): Promise<void> {
    await Promise.allSettled([...this.children].map((p) => p.stop(3000)));
    for (const ns of [...this.created].reverse()) {
      const pids = (await run(this.ipBin, ['netns', 'pids', ns], { allowFail: true })).split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await run(this.ipBin, ['netns', 'del', ns], { allowFail: true });
    }
    this.created = [];
    rmSync(this.workDir, { recursive: true, force: true });
    unregisterTeardown(this);
  }

  closeSync(): void {
    for (const p of this.children) p.killNow();
    for (const ns of [...this.created].reverse()) {
      for (const pid of runSync(this.ipBin, ['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      runSync(this.ipBin, ['netns', 'del', ns]);
    }
    this.created = [];
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** The network namespace a process is in (its inode link), or '' if it is gone. */
function netNsOf(pid: number | 'self'): string {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return '';
  }
}

/** Namespaces of this machine whose name starts with the prefix (to check that a run left nothing behind). */
export async function namespacesWithPrefix(prefix: string): Promise<string[]> {
  const out = await run(findTool('ip', 'iproute2'), ['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${prefix}-`));
}
