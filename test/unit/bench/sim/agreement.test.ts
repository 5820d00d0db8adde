import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type BedRow, fitPeerCpu, heldOutFits, readBed, readBedFile, RX_TX_RATIO, runAgreement } from '../../../../bench/sim/agreement.ts';
import { mulberry32 } from '../../../../bench/sim/sim-bench.ts';

const MIB = 1024 * 1024;

/** A bed row whose CPU is exactly k ns per sent byte and RX_TX_RATIO x k per received one. */
function row(n: number, sizeMiB: number, k: number, allDoneS = 10): BedRow {
  return madeRow(n, sizeMiB, { k, hostCpuS: 0, contention: 0 }, allDoneS);
}

const MACHINE = { cores: 2, mbit: 100 };

/** A bed row whose CPU is exactly what fitPeerCpu's three-part term says on MACHINE. */
function madeRow(n: number, sizeMiB: number, t: { k: number; hostCpuS: number; contention: number }, allDoneS = 10): BedRow {
  const imageBytes = sizeMiB * MIB;
  const rxBytes = n * imageBytes * 1.05;
  const txBytes = n * imageBytes * 0.8;
  const load = (n * 12.5e6 * (RX_TX_RATIO + 1) * t.k * 1e-9) / MACHINE.cores;
  const cpuS = n * t.hostCpuS + t.k * (RX_TX_RATIO * rxBytes + txBytes) * 1e-9 * Math.max(1, load) ** -t.contention;
  return { n, sizeMiB, imageBytes, allDoneS, cpuS, rxBytes, txBytes };
}

/** A fan-out results.json as pollen bench fanout writes it (sweep.ts, scenario.ts), trimmed to what is read. */
function fanoutReport(scenarios: unknown[]): unknown {
  return { kind: 'pollen-bench-fanout', machine: { cpus: 2, kernel: 'x', node: 'v20' }, options: { peers: [2], sizesMiB: [8], mbit: 100, registryMbit: 100, systems: ['pollen'] }, systems: [], scenarios };
}

function scenario(system: string, n: number, opts: { ok?: boolean; clientIsDaemon?: boolean; servedS?: (i: number) => number | undefined } = {}): unknown {
  const hosts = Array.from({ length: n }, (_, i) => ({ host: `peer0${i + 1}`, ok: opts.ok ?? true, seconds: 9, servedS: opts.servedS?.(i), rxBytes: 10 * MIB, txBytes: 8 * MIB, fromRegistry: 0, fromSupernode: MIB, fromPeers: 9 * MIB, clientCpuS: 0.5, clientIsDaemon: opts.clientIsDaemon, clientMaxRssMiB: 20 }));
  return { system, n, sizeMiB: 8, imageBytes: 8 * MIB, lowerBoundS: 0.67, allDoneS: 9.5, medianS: 9, registryEgressBytes: 8 * MIB, supernodeEgressBytes: 8 * MIB, registryCpuS: 0.1, hosts, daemons: { supernode: { cpuS: 1, lifeCpuS: 2, maxRssMiB: 90 }, 'peer@peer01': { cpuS: 2, lifeCpuS: 3, maxRssMiB: 100 } } };
}

describe('fitting the peers\' CPU to the bed', () => {
  const matrix = (t: { k: number; hostCpuS: number; contention: number }): BedRow[] => [4, 8, 16].flatMap((n) => [64, 256].map((s) => madeRow(n, s, t)));

  it('recovers the three parts the rows were made with: a cost per host, a cost per byte, and how crowding cheapens a byte', () => {
    const fit = fitPeerCpu(matrix({ k: 5, hostCpuS: 0.55, contention: 0.37 }), MACHINE);
    expect(fit.txNsPerByte).toBeCloseTo(5, 6);
    expect(fit.rxNsPerByte).toBeCloseTo(5 * RX_TX_RATIO, 6);
    expect(fit.hostCpuS).toBeCloseTo(0.55, 6);
    expect(fit.contention).toBeCloseTo(0.37, 9);
  });

  it('finds one cost per byte in rows made with one, a received byte costing RX_TX_RATIO sent ones', () => {
    const fit = fitPeerCpu([row(4, 64, 14), row(8, 64, 14), row(16, 256, 14)], MACHINE);
    expect(fit.txNsPerByte).toBeCloseTo(14, 6);
    expect(fit.rxNsPerByte).toBeCloseTo(14 * RX_TX_RATIO, 6);
    expect(fit.hostCpuS).toBeCloseTo(0, 6);
    expect(fit.contention).toBe(0);
  });

  it('fits one cost per byte, least squares on the relative error, where the rows cannot tell the parts apart', () => {
    // Two rows: k minimises (k/10 - 1)^2 + (k/20 - 1)^2, so k = (1/10 + 1/20) / (1/100 + 1/400) = 12.
    expect(fitPeerCpu([row(4, 64, 10), row(4, 64, 20)], MACHINE)).toEqual({ rxNsPerByte: expect.closeTo(36, 9) as number, txNsPerByte: expect.closeTo(12, 9) as number, hostCpuS: 0, contention: 0 });
    // Three rows of one N and S (one cell run three times): neither a fixed part nor a discount to tell from the bytes.
    const one = [row(4, 64, 40), row(4, 64, 80), row(4, 64, 60)];
    const single = (1 / 40 + 1 / 80 + 1 / 60) / (1 / 40 ** 2 + 1 / 80 ** 2 + 1 / 60 ** 2);
    expect(fitPeerCpu(one, MACHINE)).toEqual({ rxNsPerByte: expect.closeTo(single * RX_TX_RATIO, 6) as number, txNsPerByte: expect.closeTo(single, 6) as number, hostCpuS: 0, contention: 0 });
  });

  it('fits the discount but no fixed part to one image size at several N', () => {
    const rows = [4, 8, 16].map((n) => madeRow(n, 64, { k: 5, hostCpuS: 0, contention: 0.37 }));
    const fit = fitPeerCpu(rows, MACHINE);
    expect(fit.hostCpuS).toBe(0);
    expect(fit.txNsPerByte).toBeCloseTo(5, 4);
    expect(fit.contention).toBeCloseTo(0.37, 9);
  });

  it('holds the fixed part at zero where the rows would have it negative', () => {
    const rows = [4, 8, 16].flatMap((n) => [64, 256].map((s) => ({ ...row(n, s, 5), cpuS: row(n, s, 5).cpuS - 0.2 * n })));
    expect(fitPeerCpu(rows, MACHINE).hostCpuS).toBe(0);
  });

  it('explains noisy rows at least as well as a search of every part on a grid', () => {
    // Beds with some cells crowded (L > 1 at N = 8 and 16) and some not, each row off its term by up to 10 %.
    const random = mulberry32(11);
    for (let bed = 0; bed < 6; bed++) {
      const rows = [4, 8, 16].flatMap((n) => [64, 256].map((s) => madeRow(n, s, { k: 5, hostCpuS: 0.56, contention: 0.37 }))).map((r) => ({ ...r, cpuS: r.cpuS * (0.9 + 0.2 * random()) }));
      const err = (t: { k: number; hostCpuS: number; contention: number }): number => rows.reduce((sum, r) => sum + (madeRow(r.n, r.sizeMiB, t).cpuS / r.cpuS - 1) ** 2, 0);
      const fit = fitPeerCpu(rows, MACHINE);
      let grid = Infinity;
      for (let a = 0; a <= 1.2; a += 0.02) for (let k = 3; k <= 8; k += 0.05) for (let c = 0; c <= 0.95; c += 0.05) grid = Math.min(grid, err({ k, hostCpuS: a, contention: c }));
      expect(err({ k: fit.txNsPerByte, hostCpuS: fit.hostCpuS, contention: fit.contention })).toBeLessThanOrEqual(grid * (1 + 1e-6));
    }
  });

  it('predicts each row from the other rows only, and says so; a lone row is fitted from itself', () => {
    const t = { k: 5, hostCpuS: 0.5, contention: 0.3 };
    const rows = [...matrix(t), madeRow(16, 64, { ...t, k: 20 })];
    const fits = heldOutFits(rows, MACHINE);
    expect(fits.map((f) => f.heldOut)).toEqual(rows.map(() => true));
    // The outlier's own cost does not enter its prediction; it does enter the others'.
    expect(fits[6]!.cpu.txNsPerByte).toBeCloseTo(5, 6);
    expect(fits[6]!.cpu.hostCpuS).toBeCloseTo(0.5, 6);
    expect(fits[0]!.cpu.txNsPerByte).not.toBeCloseTo(5, 2);
    const lone = heldOutFits([row(4, 64, 12)], MACHINE);
    expect(lone).toEqual([{ cpu: { rxNsPerByte: expect.closeTo(12 * RX_TX_RATIO, 9) as number, txNsPerByte: expect.closeTo(12, 9) as number, hostCpuS: 0, contention: 0 }, heldOut: false }]);
  });
});

describe('reading the bed', () => {
  it('takes the Pollen rows in which every host finished, with daemons and clients that are not daemons as the CPU', () => {
    const bed = readBed(fanoutReport([scenario('bittorrent', 2), scenario('pollen', 2), scenario('pollen', 3, { ok: false }), { system: 'pollen', error: 'unavailable' }]));
    expect(bed).toMatchObject({ cores: 2, mbit: 100, registryMbit: 100 });
    expect(bed.rows).toEqual([{ n: 2, sizeMiB: 8, imageBytes: 8 * MIB, allDoneS: 9.5, cpuS: 1 + 2 + 2 * 0.5, rxBytes: 20 * MIB, txBytes: 16 * MIB }]);
    // A client that is one of the daemons is counted there only.
    expect(readBed(fanoutReport([scenario('pollen', 2, { clientIsDaemon: true })])).rows[0]!.cpuS).toBe(3);
  });

  it('takes when the last peer served its client the image, where every host says so', () => {
    expect(readBed(fanoutReport([scenario('pollen', 3, { servedS: (i) => 7 + i / 2 })])).rows[0]!.servedS).toBe(8);
    expect(readBed(fanoutReport([scenario('pollen', 3, { servedS: (i) => (i === 1 ? undefined : 7) })])).rows[0]!.servedS).toBeUndefined();
  });

  it('refuses what is not a fan-out result, or one without a Pollen row to hold the model against, saying why', () => {
    expect(() => readBed({ kind: 'something-else' }, 'x.json')).toThrow(/x\.json is not a fan-out result .*"kind": "pollen-bench-fanout"/);
    expect(() => readBed(fanoutReport([scenario('bittorrent', 2)]))).toThrow(/no Pollen row in which every host finished/);
    expect(() => readBed({ ...(fanoutReport([]) as object), machine: { cpus: 0 } })).toThrow(/machine\.cpus/);
  });

  it('names the file and the cause when it cannot be read or parsed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pollen-agree-'));
    try {
      await expect(readBedFile(join(dir, 'missing.json'))).rejects.toThrow(/cannot read the fan-out result .*missing\.json: ENOENT/);
      await writeFile(join(dir, 'bad.json'), '{"kind":');
      await expect(readBedFile(join(dir, 'bad.json'))).rejects.toThrow(/bad\.json is not JSON/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('runAgreement', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('simulates every row on the bed\'s cores with its held-out term: a costlier CPU is a slower swarm, and both times are written', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-agree-'));
    const lines: string[] = [];
    // Two beds alike but for their CPU: the second's bytes cost 40 x the first's.
    const cheap = { cores: 2, mbit: 100, registryMbit: 100, rows: [row(4, 16, 1, 2.5), { ...row(8, 16, 1, 3), servedS: 2 }] };
    const dear = { ...cheap, rows: [row(4, 16, 40, 9), row(8, 16, 40, 16)] };
    const a = await runAgreement({ bed: cheap, seed: 3, maxSimS: 600, outDir: join(dir, 'cheap'), log: (l) => lines.push(l) });
    const b = await runAgreement({ bed: dear, seed: 3, maxSimS: 600, outDir: join(dir, 'dear'), log: (l) => lines.push(l) });
    expect(lines.map((l) => (JSON.parse(l) as { bench: string; n: number }).n)).toEqual([4, 8, 4, 8]);
    for (const [i, r] of b.entries()) {
      expect(Number.isFinite(r.simS)).toBe(true);
      expect(r.simS).toBeGreaterThan(a[i]!.simS * 1.5);
      expect(r.diff).toBeCloseTo(r.simS / r.bedS - 1, 9);
      expect(r.heldOut).toBe(true);
      // CPU-bound: the simulated swarm cannot beat its own CPU (the bytes the peers moved at the term, over the cores).
      const bytes = r.n * 16 * MIB;
      expect(r.simS).toBeGreaterThanOrEqual((bytes * (r.cpu.rxNsPerByte + r.cpu.txNsPerByte) * 1e-9 * 0.75) / 2);
    }
    // Against when the peers served their clients, where the bed has it.
    expect(a[0]!.servedDiff).toBeUndefined();
    expect(a[1]!.servedDiff).toBeCloseTo(a[1]!.simS / 2 - 1, 9);
    expect(await readFile(join(dir, 'cheap', 'agreement.txt'), 'utf8')).toMatch(/bed served s +sim vs served[\s\S]*\s2\.00 +[+-]\d+ %/);
    const saved = JSON.parse(await readFile(join(dir, 'dear', 'agreement.json'), 'utf8')) as { rows: unknown[]; fitAll: { txNsPerByte: number } };
    expect(saved.rows).toHaveLength(2);
    expect(saved.fitAll.txNsPerByte).toBeCloseTo(40, 9);
    expect(await readFile(join(dir, 'dear', 'agreement.txt'), 'utf8')).toMatch(/bed s +sim s +sim vs bed[\s\S]*other rows/);
  });

  it('runs each host\'s fixed part of the fitted term on the cores before its pull', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-agree-'));
    // Cheap bytes and 3 CPU s a host: at N hosts on 2 cores no pull starts before 1.5 N s.
    const t = { k: 0.5, hostCpuS: 3, contention: 0 };
    const bed = { cores: 2, mbit: 100, registryMbit: 100, rows: [4, 8].flatMap((n) => [8, 16].map((s) => madeRow(n, s, t))) };
    const rows = await runAgreement({ bed, seed: 3, maxSimS: 600, outDir: dir, log: () => {} });
    for (const r of rows) {
      expect(r.cpu.hostCpuS).toBeCloseTo(3, 6);
      expect(r.simS).toBeGreaterThan(1.5 * r.n);
    }
  });
});
