import { describe, expect, it } from 'vitest';
import { lastBlobServedMs, transferSummaryFromLogs } from '../../../../bench/fanout/pollen-stats.ts';
import { finishedMedian, medianRuns } from '../../../../bench/fanout/charts.ts';
import { renderTable, summarizeRuns } from '../../../../bench/fanout/report.ts';
import { totalCpuS, type ScenarioResult } from '../../../../bench/fanout/scenario.ts';
import type { FanoutReport } from '../../../../bench/fanout/sweep.ts';

const MIB = 1024 * 1024;

function committed(o: Record<string, unknown>): string {
  return JSON.stringify({ level: 30, time: 1, name: 'p2p', msg: 'blob committed', digest: 'sha256:ab', size: 64 * MIB, ...o });
}

describe("the fan-out report's Pollen transfer columns", () => {
  it("sums the peers' 'blob committed' lines, skipping other lines and bad JSON", () => {
    const peerA = [
      '{"level":30,"msg":"P2P stalled; fetching the rest from the registry"}',
      committed({ received: 70 * MIB, duplicates: { endgame: 4 * MIB, 'stall-reassign': 2 * MIB }, fallbacks: 0, stalls: 1, starvedGrants: 2, dials: 7, syncs: 30 }),
      'not json "blob committed"',
    ].join('\n');
    const peerB = committed({ received: 64 * MIB, duplicates: { endgame: MIB }, fallbacks: 1, stalls: 0, starvedGrants: 0, dials: 3, syncs: 11 });
    const s = transferSummaryFromLogs([peerA, peerB]);
    expect(s).toEqual({ blobs: 2, receivedBytes: 134 * MIB, duplicateBytes: 7 * MIB, duplicatesByCause: { endgame: 5 * MIB, 'stall-reassign': 2 * MIB }, fallbacks: 1, stalls: 1, starvedGrants: 2, dials: 10, syncs: 41 });
    // The supernode's last line adds its seed grants by kind.
    const supernode = JSON.stringify({ level: 30, msg: 'supernode stopping', seed: { servedBytes: 1 }, seedGrants: { unheld: 128, starved: 9 } });
    expect(transferSummaryFromLogs([peerA, peerB, supernode]).seedGrants).toEqual({ unheld: 128, starved: 9 });
  });

  it('prints rx/need and the most one host received for every system and dup xS, fallbacks, stalls, starved where the system counted them', () => {
    const host = (rxBytes: number) => ({ host: 'p', ok: true, seconds: 10, rxBytes, fromRegistry: 0, fromSupernode: 0, fromPeers: rxBytes, txBytes: 0, clientCpuS: 1, clientMaxRssMiB: 10 });
    const base: ScenarioResult = { system: 'bittorrent', n: 2, sizeMiB: 64, imageBytes: 64 * MIB, lowerBoundS: 5, allDoneS: 10, medianS: 9, registryEgressBytes: 64 * MIB, supernodeEgressBytes: 0, registryCpuS: 0, hosts: [host(64 * MIB), host(72 * MIB)], daemons: {} };
    const pollen: ScenarioResult = { ...base, system: 'pollen', transfer: { blobs: 2, receivedBytes: 0, duplicateBytes: 32 * MIB, duplicatesByCause: {}, fallbacks: 3, stalls: 4, starvedGrants: 5, dials: 6, syncs: 7 } };
    const report: FanoutReport = { kind: 'pollen-bench-fanout', startedAt: '', finishedAt: '', machine: { cpus: 2, kernel: 'k', node: 'v20' }, options: { peers: [2], sizesMiB: [64], mbit: 100, registryMbit: 100, systems: [] }, systems: [], scenarios: [base, pollen] };
    const header = renderTable(report).split('\n').find((l) => l.trim().startsWith('S MiB'))!.trim().split(/\s{2,}/);
    // Rendered again at each look, so a change to the report shows.
    const cells = (system: string) => renderTable(report).split('\n').find((l) => l.includes(` ${system} `))!.trim().split(/\s{2,}/);
    const col = (name: string) => header.indexOf(name);
    expect(cells('bittorrent')[col('rx/need')]).toBe('1.06');
    // The mean hides the host that received most: 72 of 64 MiB.
    expect(cells('bittorrent')[col('rx max xS')]).toBe('1.125');
    expect(cells('bittorrent')[col('down drops')]).toBe('-');
    base.hosts = base.hosts.map((h, i) => ({ ...h, downDrops: i + 2 }));
    expect(cells('bittorrent')[col('down drops')]).toBe('5');
    expect(cells('bittorrent')[col('dup xS')]).toBe('-');
    expect(cells('pollen')[col('dup xS')]).toBe('0.50');
    expect([col('fallbacks'), col('stalls'), col('starved')].map((i) => cells('pollen')[i])).toEqual(['3', '4', '5']);
    expect(cells('pollen')[col('seed grants u/s')]).toBe('-');
    pollen.transfer!.seedGrants = { unheld: 128, starved: 9 };
    expect(cells('pollen')[col('seed grants u/s')]).toBe('128/9');
    // The share of the run the cores were saturated: only with a series that sampled them.
    expect(cells('pollen')[col('cpu-bound %')]).toBe('-');
    const intervals = 100; // 10 s of 100 ms intervals, until all-done
    pollen.series = { intervalMs: 100, startMs: 0, hosts: ['p'], rxBytes: Array.from({ length: intervals }, () => [0]), txBytes: Array.from({ length: intervals }, () => [0]) };
    expect(cells('pollen')[col('cpu-bound %')]).toBe('-');
    pollen.series.cpuBusy = Array.from({ length: intervals }, (_, i) => (i < 30 ? 0.5 : 1));
    expect(cells('pollen')[col('cpu-bound %')]).toBe('70');
  });

  it("reads when a peer served its client the last blob, and prints the client's tail after it", () => {
    const access = (o: Record<string, unknown>): string => JSON.stringify({ level: 30, component: 'access', method: 'GET', status: 200, bytes: 100, msg: 'access', ...o });
    const log = [
      access({ time: 1000, path: '/v2/' }),
      access({ time: 5000, path: '/v2/r/blobs/sha256:aa', source: 'peer' }),
      access({ time: 7000, path: '/v2/r/blobs/sha256:bb', source: 'peer' }),
      // The config read again from the store at the end: the client's own step.
      access({ time: 7500, path: '/v2/r/blobs/sha256:aa', source: 'local' }),
      access({ time: 8000, path: '/v2/r/blobs/sha256:cc', status: 404 }),
      access({ time: 9000, path: '/v2/r/blobs/sha256:dd', method: 'HEAD' }),
      access({ time: 9500, path: '/v2/r/manifests/latest' }),
      'not json "access" /blobs/',
    ].join('\n');
    expect(lastBlobServedMs(log)).toBe(7000);
    expect(lastBlobServedMs(access({ time: 1, path: '/v2/' }))).toBeUndefined();
    const host = (seconds: number, servedS?: number) => ({ host: 'p', ok: true, seconds, ...(servedS !== undefined ? { servedS } : {}), rxBytes: 64 * MIB, fromRegistry: 0, fromSupernode: 0, fromPeers: 64 * MIB, txBytes: 0, clientCpuS: 1, clientMaxRssMiB: 10 });
    const pollen: ScenarioResult = { system: 'pollen', n: 3, sizeMiB: 64, imageBytes: 64 * MIB, lowerBoundS: 5, allDoneS: 10, medianS: 9, registryEgressBytes: 64 * MIB, supernodeEgressBytes: 0, registryCpuS: 0, hosts: [host(9, 8), host(10, 8.5), host(9.5, 9.3)], daemons: {} };
    const report: FanoutReport = { kind: 'pollen-bench-fanout', startedAt: '', finishedAt: '', machine: { cpus: 2, kernel: 'k', node: 'v20' }, options: { peers: [3], sizesMiB: [64], mbit: 100, registryMbit: 100, systems: [] }, systems: [], scenarios: [pollen] };
    const lines = renderTable(report).split('\n');
    const header = lines.find((l) => l.trim().startsWith('S MiB'))!.trim().split(/\s{2,}/);
    const cells = lines.find((l) => l.includes(' pollen '))!.trim().split(/\s{2,}/);
    // Tails 1.0, 1.5 and 0.2 s: the median host's.
    expect(cells[header.indexOf('client tail s')]).toBe('1.00');
    pollen.hosts = [host(9), host(10)];
    expect(renderTable(report).split('\n').find((l) => l.includes(' pollen '))!.trim().split(/\s{2,}/)[header.indexOf('client tail s')]).toBe('-');
  });

  it("notes a baseline's pulls that were retried after a server error, with the error", () => {
    const host = (retriedAfter?: string) => ({ host: 'p', ok: true, seconds: 10, rxBytes: 64 * MIB, fromRegistry: 0, fromSupernode: 64 * MIB, fromPeers: 0, txBytes: 0, clientCpuS: 1, clientMaxRssMiB: 10, ...(retriedAfter ? { retriedAfter } : {}) });
    const cache: ScenarioResult = { system: 'proxy-cache', n: 2, sizeMiB: 64, imageBytes: 64 * MIB, lowerBoundS: 5, allDoneS: 10, medianS: 9, registryEgressBytes: 64 * MIB, supernodeEgressBytes: 128 * MIB, registryCpuS: 0, hosts: [host('skopeo exited 1: invalid status code from registry 500'), host()], daemons: {} };
    const report: FanoutReport = { kind: 'pollen-bench-fanout', startedAt: '', finishedAt: '', machine: { cpus: 2, kernel: 'k', node: 'v20' }, options: { peers: [2], sizesMiB: [64], mbit: 100, registryMbit: 100, systems: [] }, systems: [], scenarios: [cache] };
    expect(renderTable(report)).toContain('proxy-cache N=2 S=64: 1 pull(s) retried (counted in the time) after: skopeo exited 1: invalid status code from registry 500');
    cache.hosts = [host(), host()];
    expect(renderTable(report)).not.toContain('retried');
  });

  it('counts a client that is also a daemon (aria2c) once in total cpu s, a separate client (skopeo) on top of the daemons, and the kernel share of the daemons', () => {
    const host = (clientIsDaemon: boolean) => ({ host: 'p', ok: true, seconds: 10, rxBytes: 64 * MIB, fromRegistry: 0, fromSupernode: 0, fromPeers: 64 * MIB, txBytes: 0, clientCpuS: 0.5, clientMaxRssMiB: 10, ...(clientIsDaemon ? { clientIsDaemon } : {}) });
    const daemons = { 'a@p1': { cpuS: 1, sysS: 0.25, lifeCpuS: 1.5, maxRssMiB: 1 }, 'b@p2': { cpuS: 2, sysS: 0.5, lifeCpuS: 2.5, maxRssMiB: 1 } };
    const bt: ScenarioResult = { system: 'bittorrent', n: 2, sizeMiB: 64, imageBytes: 64 * MIB, lowerBoundS: 5, allDoneS: 10, medianS: 9, registryEgressBytes: 64 * MIB, supernodeEgressBytes: 0, registryCpuS: 0, hosts: [host(true), host(true)], daemons };
    const pollen: ScenarioResult = { ...bt, system: 'pollen', hosts: [host(false), host(false)] };
    expect(totalCpuS(bt)).toBeCloseTo(3, 9);
    expect(totalCpuS(pollen)).toBeCloseTo(4, 9);
    const report: FanoutReport = { kind: 'pollen-bench-fanout', startedAt: '', finishedAt: '', machine: { cpus: 2, kernel: 'k', node: 'v20' }, options: { peers: [2], sizesMiB: [64], mbit: 100, registryMbit: 100, systems: [] }, systems: [], scenarios: [bt, pollen] };
    const lines = renderTable(report).split('\n');
    const header = lines.find((l) => l.trim().startsWith('S MiB'))!.trim().split(/\s{2,}/);
    const cells = (system: string) => lines.find((l) => l.includes(` ${system} `))!.trim().split(/\s{2,}/);
    expect(cells('bittorrent')[header.indexOf('daemon life cpu s')]).toBe('4.00');
    expect(cells('bittorrent')[header.indexOf('daemon sys %')]).toBe('25');
    expect(cells('pollen')[header.indexOf('total cpu s')]).toBe('4.00');
    // 4 CPU s over 10 s on 2 cores: a fifth of the machine.
    expect(cells('pollen')[header.indexOf('cores busy %')]).toBe('20');
    expect(cells('bittorrent')[header.indexOf('cores busy %')]).toBe('15');
  });

  it('with --runs, labels each row with its run and adds medians, ranges and how often each system was the fastest of its run', () => {
    const host = { host: 'p', ok: true, seconds: 10, rxBytes: 64 * MIB, fromRegistry: 0, fromSupernode: 0, fromPeers: 64 * MIB, txBytes: 0, clientCpuS: 1, clientMaxRssMiB: 10 };
    const at = (system: string, run: number, allDoneS: number, cpuS: number, error?: string): ScenarioResult => ({
      system, run, n: 8, sizeMiB: 64, imageBytes: 64 * MIB, lowerBoundS: 5, allDoneS, medianS: allDoneS, registryEgressBytes: 64 * MIB, supernodeEgressBytes: 0, registryCpuS: 0,
      hosts: [host], daemons: { 'd@p': { cpuS, lifeCpuS: cpuS, maxRssMiB: 1 } }, ...(error ? { error } : {}),
    });
    const scenarios = [at('bittorrent', 1, 10, 4), at('pollen', 1, 9, 16), at('pollen', 2, 12, 18), at('bittorrent', 2, 11, 5), at('bittorrent', 3, 9.5, 6), at('pollen', 3, NaN, 0, '1 of 8 pulls failed')];
    const report: FanoutReport = { kind: 'pollen-bench-fanout', startedAt: '', finishedAt: '', machine: { cpus: 2, kernel: 'k', node: 'v20' }, options: { peers: [8], sizesMiB: [64], mbit: 100, registryMbit: 100, systems: ['bittorrent', 'pollen'], runs: 3 }, systems: [], scenarios };
    const [bt, pollen] = summarizeRuns(report);
    // A failed run is left out of the medians (and the run it was in counts for the others).
    expect(bt).toMatchObject({ system: 'bittorrent', runs: 3, medianAllDoneS: 10, minAllDoneS: 9.5, maxAllDoneS: 11, fastest: 2 });
    expect(bt!.medianTotalCpuS).toBeCloseTo(5 + 1, 9);
    expect(pollen).toMatchObject({ system: 'pollen', runs: 2, medianAllDoneS: 10.5, minAllDoneS: 9, maxAllDoneS: 12, fastest: 1 });
    const text = renderTable(report);
    expect(text).toContain(' pollen #2 ');
    const medianRow = text.split('\n').find((l) => /^ +64 +8 +pollen +2 /.test(l))!;
    expect(medianRow.trim().split(/\s{2,}/)).toEqual(['64', '8', 'pollen', '2', '10.50', '9.00-12.00', '2.10', '18.00', '1 of 2']);
    // The charts draw one run per system: the median one (the lower of two middle runs).
    expect(medianRuns(scenarios.filter((r) => r.system === 'bittorrent')).map((r) => r.run)).toEqual([1]);
    expect(medianRuns(scenarios.filter((r) => r.system === 'pollen')).map((r) => r.run)).toEqual([1]);
    // The all-done-against-N chart: the median of the finished runs (a failed one would make it NaN).
    expect(finishedMedian(scenarios.filter((r) => r.system === 'pollen'))).toBe(10.5);
    expect(finishedMedian([at('pollen', 1, NaN, 0, 'failed')])).toBeNaN();
  });
});
