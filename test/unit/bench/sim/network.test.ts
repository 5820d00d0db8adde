import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../../../bench/sim/event-queue.ts';
import { SimNetwork } from '../../../../bench/sim/network.ts';

const MB = 1_000_000;

function setup(latencyMs = 0): { q: EventQueue; net: SimNetwork } {
  const q = new EventQueue();
  return { q, net: new SimNetwork(q, { latencyMs: () => latencyMs }) };
}

describe('SimNetwork', () => {
  it('moves one transfer at the slower of upload and download cap, after the latency', () => {
    const { q, net } = setup(20);
    const a = net.addHost({ upBytesPerS: 10 * MB, downBytesPerS: 100 * MB });
    const b = net.addHost({ upBytesPerS: 100 * MB, downBytesPerS: 5 * MB });
    let done = NaN;
    net.transfer(a, b, 10 * MB, (t) => (done = t));
    q.run();
    expect(done).toBeCloseTo(20 + 2000, 6);
    expect(net.sentBytes(a)).toBeCloseTo(10 * MB, 3);
    expect(net.receivedBytes(b)).toBeCloseTo(10 * MB, 3);
  });

  it('shares a host upload equally and gives the freed capacity to the flow that remains', () => {
    const { q, net } = setup();
    const src = net.addHost({ upBytesPerS: 1 * MB, downBytesPerS: 1 * MB });
    const b = net.addHost({ upBytesPerS: 1 * MB, downBytesPerS: 10 * MB });
    const c = net.addHost({ upBytesPerS: 1 * MB, downBytesPerS: 10 * MB });
    const done: Record<string, number> = {};
    net.transfer(src, b, 1 * MB, (t) => (done.b = t));
    net.transfer(src, c, 3 * MB, (t) => (done.c = t));
    q.run();
    // Both at 0.5 MB/s until b is done at 2 s (c has moved 1 MB), then c alone at 1 MB/s for 2 MB.
    expect(done.b).toBeCloseTo(2000, 6);
    expect(done.c).toBeCloseTo(4000, 6);
    expect(net.sentBytes(src)).toBeCloseTo(4 * MB, 3);
  });

  it('shares a host download among several sources', () => {
    const { q, net } = setup();
    const sink = net.addHost({ upBytesPerS: 1 * MB, downBytesPerS: 2 * MB });
    const sources = [0, 1, 2, 3].map(() => net.addHost({ upBytesPerS: 10 * MB, downBytesPerS: 1 * MB }));
    const done: number[] = [];
    for (const s of sources) net.transfer(s, sink, 1 * MB, (t) => done.push(t));
    q.run();
    expect(done).toHaveLength(4);
    for (const t of done) expect(t).toBeCloseTo(2000, 6);
    expect(net.receivedBytes(sink)).toBeCloseTo(4 * MB, 3);
  });

  it('a cancelled transfer never completes and frees its share', () => {
    const { q, net } = setup();
    const a = net.addHost({ upBytesPerS: 1 * MB, downBytesPerS: 1 * MB });
    const b = net.addHost({ upBytesPerS: 1 * MB, downBytesPerS: 1 * MB });
    const c = net.addHost({ upBytesPerS: 1 * MB, downBytesPerS: 1 * MB });
    let cancelledDone = false;
    let otherDone = NaN;
    const t = net.transfer(a, b, 10 * MB, () => (cancelledDone = true));
    net.transfer(a, c, 2 * MB, (at) => (otherDone = at));
    q.at(1000, () => net.cancel(t));
    q.run();
    expect(cancelledDone).toBe(false);
    // 0.5 MB moved in the first second, the remaining 1.5 MB at the full 1 MB/s.
    expect(otherDone).toBeCloseTo(2500, 6);
    expect(net.activeFlows(a)).toEqual({ out: 0, in: 0 });
  });

  it('rejects bad hosts and transfers', () => {
    const { net } = setup();
    expect(() => net.addHost({ upBytesPerS: 0, downBytesPerS: 1 })).toThrow(/positive/);
    const a = net.addHost({ upBytesPerS: 1, downBytesPerS: 1 });
    expect(() => net.transfer(a, a, 1, () => {})).toThrow(/two different hosts/);
    expect(() => net.transfer(a, 7, 1, () => {})).toThrow(/no host 7/);
  });
});
