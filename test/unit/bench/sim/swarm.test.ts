import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../../../bench/sim/event-queue.ts';
import { SimNetwork, type HostId } from '../../../../bench/sim/network.ts';
import { ReferenceScheduler } from '../../../../bench/sim/reference-scheduler.ts';
import type { SimScheduler } from '../../../../bench/sim/scheduler.ts';
import { runSwarm } from '../../../../bench/sim/swarm.ts';

const MB = 1_000_000;

function seeded(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

function fanout(n: number, opts: { upMBps: number; pieces: number; latencyMs?: number }): { q: EventQueue; net: SimNetwork; seed: HostId; peers: HostId[] } {
  const q = new EventQueue();
  const net = new SimNetwork(q, { latencyMs: () => opts.latencyMs ?? 0 });
  const seed = net.addHost({ upBytesPerS: opts.upMBps * MB, downBytesPerS: opts.upMBps * MB });
  const peers = Array.from({ length: n }, () => net.addHost({ upBytesPerS: opts.upMBps * MB, downBytesPerS: opts.upMBps * MB }));
  return { q, net, seed, peers };
}

describe('runSwarm with the reference scheduler', () => {
  it('one peer gets the blob from the seed at line rate', () => {
    const { q, net, seed, peers } = fanout(1, { upMBps: 10, pieces: 20 });
    const r = runSwarm(q, net, seed, peers, new ReferenceScheduler({ maxUploadsPerHost: 8, random: seeded(1) }), { pieces: 20, pieceBytes: MB, slotsPerPeer: 4, retryMs: 10 });
    expect(r.allDoneMs).toBeCloseTo(2000, 3);
    expect(r.seedSentBytes).toBeCloseTo(20 * MB, 0);
    expect(r.decisions).toBe(20);
  });

  it('every peer of a fan-out gets every piece exactly once, no faster than T*', () => {
    const n = 16;
    const pieces = 32;
    const { q, net, seed, peers } = fanout(n, { upMBps: 10, pieces, latencyMs: 5 });
    const r = runSwarm(q, net, seed, peers, new ReferenceScheduler({ maxUploadsPerHost: 4, random: seeded(7) }), { pieces, pieceBytes: MB, slotsPerPeer: 4, retryMs: 20 });
    for (const p of peers) expect(net.receivedBytes(p)).toBeCloseTo(pieces * MB, 0);
    expect(r.decisions).toBe(n * pieces);
    const tStarMs = Math.max((pieces * MB) / (10 * MB), (n * pieces * MB) / ((n + 1) * 10 * MB)) * 1000;
    expect(r.allDoneMs).toBeGreaterThanOrEqual(tStarMs);
    // The seed sent far fewer than N copies: the peers served each other.
    expect(r.seedSentBytes).toBeLessThan((n / 4) * pieces * MB);
    expect(r.doneMs.every((t) => Number.isFinite(t) && t <= r.allDoneMs)).toBe(true);
  });

  it('is deterministic for a seeded scheduler', () => {
    const once = (): number[] => {
      const { q, net, seed, peers } = fanout(8, { upMBps: 10, pieces: 16, latencyMs: 3 });
      return runSwarm(q, net, seed, peers, new ReferenceScheduler({ maxUploadsPerHost: 4, random: seeded(3) }), { pieces: 16, pieceBytes: MB, slotsPerPeer: 3, retryMs: 10 }).doneMs;
    };
    expect(once()).toEqual(once());
  });

  it('catches a scheduler that sends a peer to a host without the piece', () => {
    const { q, net, seed, peers } = fanout(2, { upMBps: 10, pieces: 4 });
    const bad: SimScheduler = {
      start: () => {},
      assign: (peer) => [{ piece: 0, from: peers.find((p) => p !== peer)! }],
      pieceDone: () => {},
    };
    expect(() => runSwarm(q, net, seed, peers, bad, { pieces: 4, pieceBytes: MB, slotsPerPeer: 1, retryMs: 10 })).toThrow(/does not hold/);
  });

  it('gives up when peers never finish (a scheduler that assigns nothing)', () => {
    const { q, net, seed, peers } = fanout(2, { upMBps: 10, pieces: 4 });
    const idle: SimScheduler = { start: () => {}, assign: () => [], pieceDone: () => {} };
    expect(() => runSwarm(q, net, seed, peers, idle, { pieces: 4, pieceBytes: MB, slotsPerPeer: 1, retryMs: 100, maxSimMs: 5000 })).toThrow(/2 of 2 peers did not finish/);
  });
});
