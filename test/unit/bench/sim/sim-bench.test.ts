import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runSimBench } from '../../../../bench/sim/sim-bench.ts';

describe('runSimBench', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints one JSON line per N and writes results.json, table.txt and the chart, with all-done against T*', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-sim-'));
    const lines: string[] = [];
    const rows = await runSimBench({ peers: [4, 8], sizeMiB: 16, mbit: 100, originMbit: 100, seed: 5, maxSimS: 600, scheduler: { offerIntervalMs: 400 }, routeUsPerSync: 75, outDir: dir, log: (l) => lines.push(l) });
    expect(lines.map((l) => JSON.parse(l).n)).toEqual([4, 8]);
    for (const r of rows) {
      expect(r.unfinished).toBe(0);
      // T* = S / u_origin here: 16 MiB at 12.5 MB/s.
      expect(r.lowerBoundS).toBeCloseTo((16 * 1024 * 1024) / 12.5e6, 6);
      expect(r.xLowerBound).toBeGreaterThanOrEqual(1);
      expect(r.seedEgressXS).toBeCloseTo(1, 6);
      expect(r.cpuUsPerSchedule).toBeGreaterThan(0);
      expect(r.cpuUsPerSyncWithoutScan).toBeGreaterThan(0);
      // With an offer interval, the haves-driven syncs within it run no parent scan.
      expect(r.peakScansPerSimS).toBeGreaterThan(0);
      expect(r.peakScansPerSimS).toBeLessThan(r.peakSchedulesPerSimS);
      expect(r.supernodeCpuAtPeak).toBeGreaterThan(0);
      // Each sync of the busiest second also pays its HTTP request (75 us here).
      expect(r.supernodeCpuAtPeakWithRoute).toBeGreaterThan(r.supernodeCpuAtPeak);
      expect(r.supernodeCpuAtPeakWithRoute).toBeGreaterThanOrEqual(r.peakSchedulesPerSimS * 75e-6);
      // Busy peers heart-beat on phases of their own, a request each, but not while their syncs carry
      // the report (every 250 ms here): at most a beat before a peer's first sync.
      expect(r.heartbeatsBySimS.reduce((x, y) => x + y, 0)).toBeLessThanOrEqual(r.n);
      // Every agent registered once as it started, before the pull (no heartbeat came back unknown
      // here, so none during it), and its task's creation schedules: it counts with the syncs.
      expect(r.registrationsBeforePull).toBe(r.n);
      expect(r.setupRequestsBySimS.reduce((x, y) => x + y, 0)).toBe(0);
      expect(r.syncsBySimS[0]).toBeGreaterThanOrEqual(r.n * r.layers);
      const requests = r.heartbeatsBySimS.map((h, s) => h + (r.syncsBySimS[s] ?? 0) + (r.setupRequestsBySimS[s] ?? 0));
      expect(r.supernodeCpuAtPeakWithRoute).toBeGreaterThanOrEqual(Math.max(...requests) * 75e-6);
      expect(r.supernodeCpuBusiest5sWithRoute).toBeGreaterThan(0);
      expect(r.supernodeCpuBusiest5sWithRoute).toBeLessThanOrEqual(r.supernodeCpuAtPeakWithRoute);
      expect(r.syncsBySimS.reduce((a, b) => a + b, 0)).toBe(r.scheduleCalls);
      // Every peer dialled at least one parent (the seed alone does not serve a swarm of peers).
      expect(r.dialsPerPeer).toBeGreaterThanOrEqual(1);
    }
    const saved = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as { rows: unknown[] };
    expect(saved.rows).toHaveLength(2);
    expect(await readFile(join(dir, 'table.txt'), 'utf8')).toMatch(/x T\*/);
    expect(await readFile(join(dir, 'alldone-vs-n.svg'), 'utf8')).toMatch(/^<svg[\s\S]*Pollen \(real scheduler\)[\s\S]*<\/svg>\n$/);
  });

  it("simulates the peers pulling an image's layers at once when given their shares", async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-sim-'));
    const [one] = await runSimBench({ peers: [4], sizeMiB: 16, mbit: 100, originMbit: 100, seed: 5, maxSimS: 600, outDir: dir, log: () => {} });
    const [layered] = await runSimBench({ peers: [4], sizeMiB: 16, mbit: 100, originMbit: 100, seed: 5, maxSimS: 600, layerShares: [0.5, 0.25, 0.25], outDir: dir, log: () => {} });
    expect([one!.layers, layered!.layers]).toEqual([1, 3]);
    // 16 MiB in 512 KiB pieces either way (8 + 4 + 4 MiB).
    expect([one!.pieces, layered!.pieces]).toEqual([32, 32]);
    expect(layered!.unfinished).toBe(0);
    expect(layered!.seedEgressXS).toBeCloseTo(1, 6);
    expect(layered!.allDoneS).not.toBe(one!.allDoneS);
    expect(await readFile(join(dir, 'table.txt'), 'utf8')).toMatch(/layers[\s\S]*\n\s*4\s+16\s+3\s+32\s/);
  });
});
