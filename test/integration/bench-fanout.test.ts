// The fan-out benchmark end to end at a tiny scale (2 peer hosts, an 8 MiB image): every baseline
// gets the image onto every host, the byte accounting says where the bytes came from, and the
// results directory holds the JSON, the table and the charts. Needs root (see testbed.test.ts).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScenarioResult } from '../../bench/fanout/scenario.ts';
import { runFanout, type FanoutReport } from '../../bench/fanout/sweep.ts';
import { PAGE_REPORTING_ORDER } from '../../bench/testbed/vm-memory.ts';
import { PollenSystem, type LaunchSpec, type PollenLaunch } from '../../bench/fanout/systems/pollen.ts';
import { makeTorrent } from '../../bench/fanout/torrent.ts';
import { requireTool } from '../helpers/tools.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SIZE_MIB = 8;

describe('pollen bench fanout at small scale (needs root)', () => {
  let out: string;
  let report: FanoutReport;
  /** The VM's free page reporting order before the sweep (undefined: a kernel without it). */
  let reportingOrder: string | undefined;
  const scenario = (system: string): ScenarioResult => {
    const r = report.scenarios.find((s) => s.system === system);
    if (!r) throw new Error(`no ${system} scenario`);
    return r;
  };

  beforeAll(async () => {
    for (const [tool, pkg] of [['skopeo', 'skopeo'], ['docker-registry', 'docker-registry'], ['aria2c', 'aria2'], ['opentracker', 'opentracker'], ['curl', 'curl']] as const) requireTool(tool, pkg);
    out = await mkdtemp(join(tmpdir(), 'pollen-fanout-test-'));
    reportingOrder = existsSync(PAGE_REPORTING_ORDER) ? await readFile(PAGE_REPORTING_ORDER, 'utf8') : undefined;
    report = await runFanout({ peers: [2], sizesMiB: [SIZE_MIB], mbit: 200, systems: ['direct', 'proxy-cache', 'bittorrent'], outDir: out, repoRoot: ROOT, log: () => {} });
  }, 300_000);

  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('gets the whole image onto every host with every baseline', () => {
    for (const r of report.scenarios) {
      expect(r.error, `${r.system}: ${r.error}`).toBeUndefined();
      expect(r.hosts).toHaveLength(2);
      for (const h of r.hosts) {
        expect(h.ok).toBe(true);
        expect(h.rxBytes).toBeGreaterThanOrEqual(r.imageBytes);
      }
      expect(r.allDoneS).toBeGreaterThanOrEqual(r.lowerBoundS * 0.95);
    }
  });

  it('held the VM\'s freed memory for the sweep, and gave the kernel its setting back', async () => {
    expect(report.options.vmMemory).toBe(reportingOrder === undefined || reportingOrder.trim() === '-1' ? 'no page reporting' : 'held');
    if (reportingOrder !== undefined) expect(await readFile(PAGE_REPORTING_ORDER, 'utf8')).toBe(reportingOrder);
  });

  it('counts direct pulls as N image sizes sent by the registry, all received from it', () => {
    const r = scenario('direct');
    expect(r.registryEgressBytes / r.imageBytes).toBeGreaterThanOrEqual(2);
    expect(r.registryEgressBytes / r.imageBytes).toBeLessThan(2.1);
    for (const h of r.hosts) expect(h.fromRegistry).toBeGreaterThanOrEqual(r.imageBytes);
  });

  it('counts pull-through-cache bytes as coming from the supernode host', () => {
    const r = scenario('proxy-cache');
    for (const h of r.hosts) expect(h.fromSupernode).toBeGreaterThanOrEqual(r.imageBytes);
    expect(r.supernodeEgressBytes).toBeGreaterThanOrEqual(2 * r.imageBytes);
    expect(r.daemons['cache@supernode']?.cpuS).toBeGreaterThan(0);
  });

  it('with --warm-up, a daemon that serves many pulls serves another image first, outside what is measured; others are not warmed', async () => {
    const warmOut = await mkdtemp(join(tmpdir(), 'pollen-fanout-warm-'));
    try {
      const warm = await runFanout({ peers: [2], sizesMiB: [4], mbit: 200, systems: ['direct', 'proxy-cache'], warmUpMiB: 2, outDir: warmOut, repoRoot: ROOT, log: () => {} });
      expect(warm.options.warmUpMiB).toBe(2);
      const cache = warm.scenarios.find((s) => s.system === 'proxy-cache')!;
      const direct = warm.scenarios.find((s) => s.system === 'direct')!;
      for (const r of [cache, direct]) expect(r.error, `${r.system}: ${r.error}`).toBeUndefined();
      // The cache served the warm-up image first; its bytes (2 x 2 MiB to the hosts) are not counted.
      expect(cache.warmUpS).toBeGreaterThan(0);
      expect(direct.warmUpS).toBeUndefined();
      expect(cache.supernodeEgressBytes).toBeLessThan(2 * cache.imageBytes + (1 << 20));
      expect(direct.registryEgressBytes).toBeLessThan(2.1 * direct.imageBytes);
      expect(await readFile(join(warmOut, 'table.txt'), 'utf8')).toContain('warmed up by a 2 MiB pull');
    } finally {
      await rm(warmOut, { recursive: true, force: true });
    }
  }, 300_000);

  it('with --runs, runs every system once per run, a different one first each time, and adds the medians', async () => {
    const runsOut = await mkdtemp(join(tmpdir(), 'pollen-fanout-runs-'));
    try {
      const r = await runFanout({ peers: [2], sizesMiB: [2], mbit: 200, systems: ['direct', 'proxy-cache'], runs: 2, outDir: runsOut, repoRoot: ROOT, log: () => {} });
      expect(r.options.runs).toBe(2);
      expect(r.scenarios.map((s) => `${s.system}#${s.run}`)).toEqual(['direct#1', 'proxy-cache#1', 'proxy-cache#2', 'direct#2']);
      for (const s of r.scenarios) expect(s.error, `${s.system}: ${s.error}`).toBeUndefined();
      const table = await readFile(join(runsOut, 'table.txt'), 'utf8');
      expect(table).toContain(' proxy-cache #2 ');
      expect(table).toMatch(/^ +2 +2 +direct +2 +\d/m);
      expect(await readdir(join(runsOut, 'logs'))).toEqual(expect.arrayContaining(['run1', 'run2']));
    } finally {
      await rm(runsOut, { recursive: true, force: true });
    }
  }, 300_000);

  it('records client CPU and peak RSS for every host', () => {
    for (const r of report.scenarios) {
      for (const h of r.hosts) {
        expect(h.clientCpuS).toBeGreaterThan(0);
        expect(h.clientMaxRssMiB).toBeGreaterThan(1);
      }
    }
  });

  it('writes results.json, table.txt and the charts', async () => {
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['results.json', 'table.txt', `cdf-s${SIZE_MIB}-n2.svg`, `rate-s${SIZE_MIB}-n2.svg`, `alldone-vs-n-s${SIZE_MIB}.svg`]));
    const json = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as FanoutReport;
    expect(json.scenarios).toHaveLength(3);
    const table = await readFile(join(out, 'table.txt'), 'utf8');
    for (const s of ['direct', 'proxy-cache', 'bittorrent']) expect(table).toContain(s);
  });

  it("samples every host's link per 100 ms during the pulls: each peer's received bytes add up to its link's counters", () => {
    for (const r of report.scenarios) {
      const series = r.series!;
      expect(series.intervalMs).toBe(100);
      expect(series.hosts).toEqual(['registry', 'supernode', ...r.hosts.map((h) => h.host)]);
      // From about the pulls' start (the sampler starts just before) to about their end.
      expect(Math.abs(series.startMs)).toBeLessThan(1000);
      expect(series.rxBytes.length * series.intervalMs).toBeGreaterThan(r.allDoneS * 1000 * 0.8);
      for (const [i, h] of r.hosts.entries()) {
        const rx = series.rxBytes.reduce((s, row) => s + row[i + 2]!, 0);
        expect(rx / h.rxBytes, `${r.system} ${h.host}`).toBeGreaterThan(0.97);
        expect(rx / h.rxBytes, `${r.system} ${h.host}`).toBeLessThan(1.05);
      }
      const sent = series.txBytes.reduce((s, row) => s + row[0]!, 0);
      expect(sent / r.registryEgressBytes, r.system).toBeGreaterThan(0.97);
      expect(sent / r.registryEgressBytes, r.system).toBeLessThan(1.05);
    }
  });

  it('builds .torrent files whose info hash aria2c agrees with', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pollen-torrent-'));
    try {
      await writeFile(join(dir, 'x'), Buffer.alloc(300_000, 7));
      await writeFile(join(dir, 'y'), Buffer.alloc(5, 9));
      const t = await makeTorrent('blobs', [{ path: ['x'], source: join(dir, 'x'), length: 300_000 }, { path: ['y'], source: join(dir, 'y'), length: 5 }], 262_144, 'http://10.0.0.1:6969/announce');
      await writeFile(join(dir, 't.torrent'), t.metainfo);
      const { stdout } = await promisify(execFile)(requireTool('aria2c', 'aria2'), ['-S', join(dir, 't.torrent')]);
      expect(stdout).toMatch(new RegExp(`Info Hash: ${t.infoHash.toString('hex')}`));
      expect(stdout).toMatch(/Piece Length: 256KiB/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Stand-ins for `pollen supernode` / `pollen peer`: a plain registry, and a pull-through cache as each host's mirror. */
function standInLaunch(): PollenLaunch {
  const registry = async (listen: string, dir: string, proxy?: string): Promise<LaunchSpec> => {
    await mkdir(dir, { recursive: true });
    const config = join(dir, 'config.yml');
    await writeFile(
      config,
      `version: 0.1\nlog: { level: warn, accesslog: { disabled: true } }\nstorage: { filesystem: { rootdirectory: ${join(dir, 'data')} } }\n` +
        `http: { addr: ${listen} }\n${proxy ? `proxy: { remoteurl: ${proxy} }\n` : ''}`,
    );
    return { cmd: requireTool('docker-registry', 'docker-registry'), args: ['serve', config] };
  };
  return {
    supernode: (_ctx, listen, dir) => registry(listen, dir),
    peer: (_ctx, _host, o) => registry(o.listen, o.dataDir, o.upstream),
  };
}

describe('the Pollen system of the fan-out benchmark, with stand-in daemons (needs root)', () => {
  it('starts a supernode and a mirror per host, and skopeo on every host pulls through its local mirror', async () => {
    const out = await mkdtemp(join(tmpdir(), 'pollen-fanout-standin-'));
    try {
      const system = new PollenSystem({ launch: standInLaunch(), name: 'pollen-stand-in' });
      const report = await runFanout({ peers: [2], sizesMiB: [4], mbit: 200, systems: [system], outDir: out, repoRoot: ROOT, log: () => {} });
      const r = report.scenarios[0]!;
      expect(r.error, r.error).toBeUndefined();
      expect(r.hosts.map((h) => h.ok)).toEqual([true, true]);
      // Each host's mirror fetched the image from the registry host (nothing from peers or the supernode).
      for (const h of r.hosts) {
        expect(h.fromRegistry).toBeGreaterThanOrEqual(r.imageBytes);
        expect(h.fromPeers).toBeLessThan(r.imageBytes * 0.01);
      }
      expect(Object.keys(r.daemons).sort()).toEqual(['peer@peer01', 'peer@peer02', 'supernode@supernode']);
      // The mirrors served the pulls: their CPU shows. The stand-in supernode serves nothing and may
      // stay under one clock tick (10 ms): measured, not necessarily above zero.
      for (const [k, d] of Object.entries(r.daemons)) expect(d.cpuS, k).toBeGreaterThanOrEqual(k.startsWith('peer@') ? 0.01 : 0);
      // The pulls' share leaves out the start-up: at most the whole life.
      for (const [k, d] of Object.entries(r.daemons)) expect(d.lifeCpuS, k).toBeGreaterThanOrEqual(d.cpuS);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
