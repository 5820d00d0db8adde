// The supernode API's messages on the model's links: in arrival order on the supernode host's
// links, and the seed's pieces get what the answers leave of its uplink.
import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../../../bench/sim/event-queue.ts';
import { API_REQUEST_OVERHEAD_BYTES, API_RESPONSE_OVERHEAD_BYTES, API_SHARE_WINDOW_MS, apiCall, apiDownlinkShare, apiUplinkShare, HTTP_OVERHEAD, type ApiLines } from '../../../../bench/sim/sim-api.ts';

const RATE = 1e6; // bytes a second each way
const lines = (): ApiLines => ({ upBytesPerS: RATE, downBytesPerS: RATE, upFreeAt: 0, downFreeAt: 0, upBytesSinceShare: 0, downBytesSinceShare: 0 });

describe('apiCall', () => {
  it('queues requests on the supernode downlink and answers on its uplink, in arrival order, each for its bytes', async () => {
    const queue = new EventQueue();
    const l = lines();
    const bytes = { requests: 0, answers: 0 };
    const ends = { queue, latencyMs: 5, lines: l, sharing: 1, bytes };
    const arrived: Array<[string, number]> = [];
    // Two calls at once: 1,000-byte requests and 10,000-byte answers (overheads on top).
    const a = apiCall(ends, HTTP_OVERHEAD, 1000 - API_REQUEST_OVERHEAD_BYTES, () => 'a', () => 10_000 - API_RESPONSE_OVERHEAD_BYTES).then((v) => arrived.push([v, queue.now]));
    const b = apiCall(ends, HTTP_OVERHEAD, 1000 - API_REQUEST_OVERHEAD_BYTES, () => 'b', () => 10_000 - API_RESPONSE_OVERHEAD_BYTES).then((v) => arrived.push([v, queue.now]));
    await queue.runSettling({ stop: () => arrived.length === 2, untilMs: 1_000 });
    await Promise.all([a, b]);
    // a: request in at 5 + 1 ms, answer out by 6 + 10, in at 21; b: request in at 7, answer after a's: 26 + 5.
    expect(arrived.map(([v]) => v)).toEqual(['a', 'b']);
    expect(arrived[0]![1]).toBeCloseTo(21, 6);
    expect(arrived[1]![1]).toBeCloseTo(31, 6);
    expect(bytes).toEqual({ requests: 2000, answers: 20_000 });
    expect(l.upBytesSinceShare).toBe(20_000);
  });
});

describe('apiUplinkShare', () => {
  it('gives the seed the uplink less the answers of the last window, never under a twentieth', () => {
    const l = lines();
    const caps: number[] = [];
    l.upBytesSinceShare = (0.25 * RATE * API_SHARE_WINDOW_MS) / 1000;
    apiUplinkShare(l, (c) => caps.push(c));
    apiUplinkShare(l, (c) => caps.push(c));
    l.upBytesSinceShare = RATE;
    apiUplinkShare(l, (c) => caps.push(c));
    expect(caps[0]).toBeCloseTo(0.75 * RATE, 6);
    expect(caps[1]).toBe(RATE);
    expect(caps[2]).toBe(RATE / 20);
  });
});

describe('apiDownlinkShare', () => {
  it('gives the registry streams the downlink less the requests of the last window, within the registry cap and never under a twentieth', async () => {
    const queue = new EventQueue();
    const l = lines();
    const rates: number[] = [];
    // The requests' bytes count in the window they reach the supernode host in.
    const call = apiCall({ queue, latencyMs: 1, lines: l, sharing: 1, bytes: { requests: 0, answers: 0 } }, HTTP_OVERHEAD, (0.25 * RATE * API_SHARE_WINDOW_MS) / 1000 - API_REQUEST_OVERHEAD_BYTES, () => 0, () => 0);
    queue.run();
    await call;
    apiDownlinkShare(l, RATE, (r) => rates.push(r));
    apiDownlinkShare(l, RATE, (r) => rates.push(r));
    apiDownlinkShare(l, RATE / 2, (r) => rates.push(r));
    l.downBytesSinceShare = RATE;
    apiDownlinkShare(l, RATE, (r) => rates.push(r));
    expect(rates[0]).toBeCloseTo(0.75 * RATE, 6);
    expect(rates.slice(1)).toEqual([RATE, RATE / 2, RATE / 20]);
  });
});
