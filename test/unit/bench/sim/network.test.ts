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

  it('gives a sender\'s share that a slow receiver cannot take to its other flows (max-min, as TCP settles)', () => {
    const { q, net } = setup();
    const src = net.addHost({ upBytesPerS: 3 * MB, downBytesPerS: 1 * MB });
    const slow = net.addHost({ upBytesPerS: 1 * MB, downBytesPerS: 0.5 * MB });
    const fast = net.addHost({ upBytesPerS: 1 * MB, downBytesPerS: 10 * MB });
    const done: Record<string, number> = {};
    net.transfer(src, slow, 1 * MB, (t) => (done.slow = t));
    net.transfer(src, fast, 5 * MB, (t) => (done.fast = t));
    q.at(1000, () => {
      expect(net.rates(src).out).toBeCloseTo(3 * MB, 3);
      expect(net.rates(fast).in).toBeCloseTo(2.5 * MB, 3);
    });
    q.run();
    // slow takes 0.5 MB/s for 2 s; fast gets the other 2.5 MB/s (5 MB in 2 s), not an equal 1.5.
    expect(done.slow).toBeCloseTo(2000, 6);
    expect(done.fast).toBeCloseTo(2000, 6);
  });

  it('with a quantum, rates follow changes no sooner than one quantum later, and completions stay exact', () => {
    const q = new EventQueue();
    const net = new SimNetwork(q, { quantumMs: 100 });
    const a = net.addHost({ upBytesPerS: 1 * MB, downBytesPerS: 1 * MB });
    const b = net.addHost({ upBytesPerS: 1 * MB, downBytesPerS: 1 * MB });
    const c = net.addHost({ upBytesPerS: 1 * MB, downBytesPerS: 1 * MB });
    const done: Record<string, number> = {};
    net.transfer(a, b, 1 * MB, (t) => (done.first = t));
    // Starts at 50 ms, inside the quantum that began at 0: it gets a rate only at 100 ms.
    q.at(50, () => net.transfer(a, c, 0.5 * MB, (t) => (done.second = t)));
    q.run();
    // first: 1 MB/s for 100 ms (0.1 MB), then 0.5 MB/s: the second flow's 0.5 MB end at 1100 ms,
    // when first has moved 0.6 MB; its last 0.4 MB run at 1 MB/s from the recompute at 1100 ms.
    expect(done.second).toBeCloseTo(1100, 6);
    expect(done.first).toBeCloseTo(1500, 6);
    expect(net.sentBytes(a)).toBeCloseTo(1.5 * MB, 3);
  });

  it('rejects bad hosts and transfers', () => {
    const { net } = setup();
    expect(() => net.addHost({ upBytesPerS: 0, downBytesPerS: 1 })).toThrow(/positive/);
    const a = net.addHost({ upBytesPerS: 1, downBytesPerS: 1 });
    expect(() => net.transfer(a, a, 1, () => {})).toThrow(/two different hosts/);
    expect(() => net.transfer(a, 7, 1, () => {})).toThrow(/no host 7/);
  });

  it('slows the flows that cost CPU in proportion when they need more than the shared cores, and leaves free flows alone', () => {
    const q = new EventQueue();
    const net = new SimNetwork(q, { cores: 1 });
    // Two peer-to-peer flows at 10 MB/s would need 2 x 10 MB/s x 100 ns/B = 2 cores: each gets half.
    const peer = { upBytesPerS: 10 * MB, downBytesPerS: 10 * MB, sendNsPerByte: 40, receiveNsPerByte: 60 };
    const [a, b, c, d] = [net.addHost(peer), net.addHost(peer), net.addHost(peer), net.addHost(peer)];
    const free = { upBytesPerS: 10 * MB, downBytesPerS: 10 * MB };
    const [x, y] = [net.addHost(free), net.addHost(free)];
    const done: Record<string, number> = {};
    net.transfer(a, b, 10 * MB, (t) => (done.ab = t));
    net.transfer(c, d, 10 * MB, (t) => (done.cd = t));
    net.transfer(x, y, 10 * MB, (t) => (done.xy = t));
    q.run();
    expect(done.ab).toBeCloseTo(2000, 6);
    expect(done.cd).toBeCloseTo(2000, 6);
    expect(done.xy).toBeCloseTo(1000, 6);
    expect(() => new SimNetwork(q, { cores: 0 })).toThrow(/cores/);
  });

  it('with contention, a crowded machine pays less per byte: flows asking L x the cores slow by L^(1 - contention)', () => {
    const q = new EventQueue();
    const net = new SimNetwork(q, { cores: 1, contention: 0.5 });
    // Four flows at 10 MB/s x 100 ns/B ask 4 cores of 1: L = 4, so each byte costs 4^-0.5 = half, and the flows move at 1/2 their rate.
    const peer = { upBytesPerS: 10 * MB, downBytesPerS: 10 * MB, sendNsPerByte: 40, receiveNsPerByte: 60 };
    const hosts = Array.from({ length: 8 }, () => net.addHost(peer));
    const done: number[] = [];
    for (let i = 0; i < 8; i += 2) net.transfer(hosts[i]!, hosts[i + 1]!, 10 * MB, (t) => done.push(t));
    q.run();
    expect(done).toHaveLength(4);
    for (const t of done) expect(t).toBeCloseTo(2000, 6);
    expect(() => new SimNetwork(q, { cores: 1, contention: 1 })).toThrow(/contention/);
    expect(() => new SimNetwork(q, { cores: 1, contention: -0.1 })).toThrow(/contention/);
  });

  it('runs a process\'s work at one core at most, shares the cores with other work and with the bytes, and counts no bytes', () => {
    const q = new EventQueue();
    const net = new SimNetwork(q, { cores: 2 });
    const peer = { upBytesPerS: 10 * MB, downBytesPerS: 10 * MB, sendNsPerByte: 50, receiveNsPerByte: 50 };
    const [a, b, c] = [net.addHost(peer), net.addHost(peer), net.addHost(peer)];
    const done: Record<string, number> = {};
    // Alone on 2 cores: one core, 1 CPU s in 1 s.
    net.compute(a, 1, (t) => (done.alone = t));
    q.run();
    expect(done.alone).toBeCloseTo(1000, 6);
    expect(net.sentBytes(a)).toBe(0);
    expect(net.receivedBytes(a)).toBe(0);
    // Three processes' work and a flow asking 10 MB/s x 100 ns/B = 1 core: 4 cores asked of 2, all at half speed,
    // until the work ends at 2 s; then the flow has moved 10 MB and takes its last 10 MB at full speed.
    const start = q.now;
    for (const h of [a, b, c]) net.compute(h, 1, (t) => (done[`w${h}`] = t - start));
    net.transfer(a, b, 20 * MB, (t) => (done.flow = t - start));
    q.run();
    for (const h of [a, b, c]) expect(done[`w${h}`]).toBeCloseTo(2000, 6);
    expect(done.flow).toBeCloseTo(3000, 6);
    expect(net.sentBytes(a)).toBeCloseTo(20 * MB, 3);
    // Stopped work never ends.
    let stopped = false;
    const w = net.compute(c, 1, () => (stopped = true));
    net.cancel(w);
    q.run();
    expect(stopped).toBe(false);
    expect(() => net.compute(a, 0, () => {})).toThrow(/positive number of CPU seconds/);
    expect(() => net.compute(9, 1, () => {})).toThrow(/no host 9/);
  });
});
