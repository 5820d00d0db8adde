// The fan-out bench's link time series: parsing the kernel's counters, and the figures the table
// derives from a series (when the swarm reached half its links' rate, how much of them it used,
// how long it ran after the servers fell quiet).
import { describe, expect, it } from 'vitest';
import { cpuBusySeries, peerRateSeries } from '../../../bench/fanout/charts.ts';
import { parseNetDev, parseProcStat, swarmFigures, type LinkSeries } from '../../../bench/testbed/link-series.ts';

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     120       2    0    0    0     0          0         0      120       2    0    0    0     0       0          0
    v0: 5000000    4000    0    0    0     0          0         0 67108864   50000    0    0    0     0       0          0
   br0:12345678901   10    0    0    0     0          0         0        7       1    0    0    0     0       0          0
garbage line
`;

describe('parseNetDev', () => {
  it("reads each interface's received and transmitted bytes, skipping the headers and lines that are not counters", () => {
    const m = parseNetDev(NET_DEV);
    expect([...m.keys()]).toEqual(['lo', 'v0', 'br0']);
    expect(m.get('v0')).toEqual({ rx: 5_000_000, tx: 67_108_864 });
    // No space after the colon once the number is wide.
    expect(m.get('br0')).toEqual({ rx: 12_345_678_901, tx: 7 });
  });
});

describe('parseProcStat', () => {
  it("reads the machine's busy and total CPU ticks from the all-cores line, idle and iowait not busy, guest time not counted twice", () => {
    const text = 'cpu  100 5 50 800 20 3 7 2 40 0\ncpu0 50 2 25 400 10 1 3 1 20 0\nintr 123\n';
    expect(parseProcStat(text)).toEqual({ busy: 100 + 5 + 50 + 3 + 7 + 2, total: 100 + 5 + 50 + 800 + 20 + 3 + 7 + 2 });
  });

  it('is undefined for text without the all-cores line', () => {
    expect(parseProcStat('cpu0 1 2 3 4 5\n')).toBeUndefined();
    expect(parseProcStat('cpu  a b c d e\n')).toBeUndefined();
  });
});

const LINK = 12.5e6; // 100 Mbit/s in bytes per second
/** A series of 100 ms intervals: hosts registry, supernode, p1, p2. */
function series(rows: { rx: [number, number]; serverTx: number }[]): LinkSeries {
  return {
    intervalMs: 100,
    startMs: 0,
    hosts: ['registry', 'supernode', 'p1', 'p2'],
    rxBytes: rows.map((r) => [0, 0, r.rx[0], r.rx[1]]),
    txBytes: rows.map((r) => [0, r.serverTx, 0, 0]),
  };
}
const FULL = LINK / 10; // a full link's bytes in 100 ms

describe('swarmFigures', () => {
  it('finds the first 300 ms in which the peers together received at half their downlinks, the share of the links used and the tail', () => {
    const rows = [
      ...Array.from({ length: 5 }, () => ({ rx: [FULL / 4, 0] as [number, number], serverTx: FULL })),
      // From 0.5 s both peers at 60 % of their links; the servers fall quiet after 0.8 s.
      ...Array.from({ length: 3 }, () => ({ rx: [0.6 * FULL, 0.6 * FULL] as [number, number], serverTx: FULL })),
      ...Array.from({ length: 4 }, () => ({ rx: [0.6 * FULL, 0.6 * FULL] as [number, number], serverTx: 0.05 * FULL })),
    ];
    const f = swarmFigures(series(rows), ['p1', 'p2'], ['registry', 'supernode'], LINK, 1.2);
    expect(f.halfRateS).toBeCloseTo(0.8, 6);
    // Received: 5 x 0.25 + 7 x 1.2 = 9.65 full intervals of one link, of 2 links x 12 intervals.
    expect(f.linkUsePct).toBeCloseTo((100 * 9.65) / 24, 6);
    expect(f.tailS).toBeCloseTo(0.4, 6);
  });

  it('tells NaN where the series cannot: peers that never reached half rate, servers that never sent', () => {
    const rows = Array.from({ length: 10 }, () => ({ rx: [0.4 * FULL, 0.4 * FULL] as [number, number], serverTx: 0 }));
    const f = swarmFigures(series(rows), ['p1', 'p2'], ['registry', 'supernode'], LINK, 1);
    expect(f.halfRateS).toBeNaN();
    expect(f.tailS).toBeNaN();
    expect(f.linkUsePct).toBeCloseTo(40, 6);
  });

  it('counts only bytes received until all-done toward link use', () => {
    const rows = Array.from({ length: 20 }, () => ({ rx: [FULL, FULL] as [number, number], serverTx: FULL }));
    const f = swarmFigures(series(rows), ['p1', 'p2'], ['registry', 'supernode'], LINK, 1);
    expect(f.linkUsePct).toBeCloseTo(100, 6);
    expect(f.tailS).toBeCloseTo(0, 6);
  });
});

describe('cpuBoundPct', () => {
  it('is the share of the intervals until all-done in which the cores were at least 95 % busy, skipping unknown ones', () => {
    const rows = Array.from({ length: 12 }, () => ({ rx: [FULL, FULL] as [number, number], serverTx: FULL }));
    const s = { ...series(rows), cpuBusy: [0.5, 0.96, 1, 1, NaN, 0.94, 1, 0.99, 0.95, 0.2, 1, 1] };
    // Until all-done at 1.0 s: ten intervals, one unknown; of the nine, six at 95 % or more.
    expect(swarmFigures(s, ['p1', 'p2'], ['registry', 'supernode'], LINK, 1).cpuBoundPct).toBeCloseTo((100 * 6) / 9, 6);
  });

  it('is NaN for a series without CPU samples (a report from before they were taken)', () => {
    const rows = Array.from({ length: 5 }, () => ({ rx: [FULL, FULL] as [number, number], serverTx: FULL }));
    expect(swarmFigures(series(rows), ['p1', 'p2'], ['registry', 'supernode'], LINK, 0.5).cpuBoundPct).toBeNaN();
  });
});

describe('cpuBusySeries', () => {
  it('averages the known intervals into 300 ms bins of percent, leaving out a last partial bin', () => {
    const s = { ...series(Array.from({ length: 7 }, () => ({ rx: [0, 0] as [number, number], serverTx: 0 }))), cpuBusy: [1, 0.5, 0, NaN, 0.9, 0.7, 1] };
    expect(cpuBusySeries(s)).toEqual([
      [0.3, 50],
      [0.6, 80],
    ]);
    expect(cpuBusySeries(series([]))).toEqual([]);
  });
});

describe('peerRateSeries', () => {
  it("sums the peers' received bytes into 300 ms bins of MB/s, leaving out the servers and a last partial bin", () => {
    const s = series(Array.from({ length: 7 }, (_, i) => ({ rx: [i * 1e5, 1e5] as [number, number], serverTx: FULL })));
    s.rxBytes[0]![0] = 9e9; // the registry's own receive: not a peer
    expect(peerRateSeries(s, ['p1', 'p2'])).toEqual([
      [0.3, (0 + 1e5 + 2e5 + 3e5) / 1e6 / 0.3],
      [0.6, (3e5 + 4e5 + 5e5 + 3e5) / 1e6 / 0.3],
    ]);
  });
});
