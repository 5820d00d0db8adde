import { describe, expect, it } from 'vitest';
import { runPollenSwarm, type PollenSwarmOptions } from '../../../../bench/sim/pollen-swarm.ts';
import { MAX_PARENTS } from '../../../../peer/p2p/parent-pool.ts';
import { measureBytesPerPeerTask, mulberry32 } from '../../../../bench/sim/sim-bench.ts';
import { DEFAULT_PIECE_BYTES } from '../../../../src/p2p/metainfo.ts';

const MIB = 1024 * 1024;
const RATE = 12.5e6; // 100 Mbit/s

function options(peers: number, extra: Partial<PollenSwarmOptions> = {}): PollenSwarmOptions {
  return { peers, blobBytes: 32 * MIB, peerUpBytesPerS: RATE, peerDownBytesPerS: RATE, originUpBytesPerS: RATE, random: mulberry32(7), ...extra };
}

describe('runPollenSwarm (the real supernode scheduler and the real peer transfer on the simulated network)', () => {
  it('10 peers all finish; every piece is accounted for and the seed sends each piece once', async () => {
    const r = await runPollenSwarm(options(10));
    expect(r.pieceCount).toBe((32 * MIB) / DEFAULT_PIECE_BYTES); // 32 MiB in the real layout
    expect(r.unfinished).toBe(0);
    expect(r.doneMs.every(Number.isFinite)).toBe(true);
    expect(r.fallbacks).toBe(0);
    // Every peer received the whole blob once, from the seed or from other peers.
    expect(r.totals.fromSeed + r.totals.fromPeers).toBe(10 * 32 * MIB);
    expect(r.totals.fromRegistry).toBe(0);
    // Peers shared: the seed sent each piece about once (not once per peer).
    expect(r.seedSentBytes).toBeCloseTo(32 * MIB, 0);
    expect(r.totals.fromSeed).toBe(32 * MIB);
    // Never faster than the lower bound S / u_origin.
    expect(r.allDoneMs / 1000).toBeGreaterThanOrEqual((32 * MIB) / RATE);
    expect(r.supernode.scheduleCalls).toBeGreaterThan(10);
    expect(r.supernode.peersDropped).toBe(0);
  });

  it('is deterministic for a seeded random', async () => {
    const a = await runPollenSwarm(options(12, { random: mulberry32(3) }));
    const b = await runPollenSwarm(options(12, { random: mulberry32(3) }));
    expect(a.doneMs).toEqual(b.doneMs);
    expect(a.supernode.scheduleCalls).toBe(b.supernode.scheduleCalls);
  });

  it('peers that get neither seed grants nor parents fall back to the registry after noProgressMs', async () => {
    const r = await runPollenSwarm(options(3, { scheduler: { maxSeedGrants: 0 }, timings: { noProgressMs: 5_000 } }));
    expect(r.unfinished).toBe(0);
    expect(r.fallbacks).toBe(3);
    expect(r.totals.fromRegistry).toBe(3 * 32 * MIB);
    expect(r.seedSentBytes).toBe(0);
    // 5 s without progress, then three fallbacks share the registry's upload.
    expect(r.allDoneMs).toBeGreaterThan(5_000 + ((3 * 32 * MIB) / RATE) * 1000 * 0.99);
  });

  it('samples the swarm while it runs: parent links within the cap, finished peers only ever more', async () => {
    const done: number[] = [];
    let unchoked = 0;
    let overCap = 0;
    const r = await runPollenSwarm(
      options(10, {
        sample: {
          everyMs: 500,
          fn: (_now, peers) => {
            done.push(peers.filter((p) => Number.isFinite(p.doneMs)).length);
            for (const p of peers) {
              const l = p.linkStates();
              unchoked += l.unchoked;
              if (l.unchoked + l.choked + l.connecting > MAX_PARENTS) overCap++;
            }
          },
        },
      }),
    );
    expect(r.unfinished).toBe(0);
    expect(done.length).toBeGreaterThanOrEqual(Math.floor(r.allDoneMs / 500));
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(unchoked).toBeGreaterThan(0);
    expect(overCap).toBe(0);
  });

  it('is held back by a shared CPU that cannot carry every link at once', async () => {
    const free = await runPollenSwarm(options(8));
    // 8 peers at 12.5 MB/s, 100 ns per byte received + sent: 10 cores' worth asked of 1.
    const starved = await runPollenSwarm(options(8, { cpu: { cores: 1, peerReceiveNsPerByte: 60, peerSendNsPerByte: 40 } }));
    expect(starved.unfinished).toBe(0);
    expect(starved.allDoneMs).toBeGreaterThan(1.5 * free.allDoneMs);
  });

  it('reports an unfinished run instead of hanging when the time limit passes', async () => {
    const r = await runPollenSwarm(options(4, { scheduler: { maxSeedGrants: 0 }, maxSimMs: 2_000 }));
    expect(r.unfinished).toBe(4);
    expect(r.allDoneMs).toBeNaN();
  });

  it('the real tracker and scheduler hold a peer-task in a bounded number of heap bytes', () => {
    const bytes = measureBytesPerPeerTask(5_000, 64);
    expect(bytes).toBeGreaterThan(50);
    expect(bytes).toBeLessThan(20_000);
  });
});
