import { describe, expect, it } from 'vitest';
import { API_RESPONSE_OVERHEAD_BYTES, CHANNEL_OVERHEAD } from '../../../../bench/sim/sim-api.ts';
import { runPollenSwarm, simPeerId, type PollenSwarmOptions } from '../../../../bench/sim/pollen-swarm.ts';
import { seededBlobs, simBlobs } from '../../../../bench/sim/sim-blobs.ts';
import { SeedStream } from '../../../../bench/sim/seed-stream.ts';
import { EventQueue } from '../../../../bench/sim/event-queue.ts';
import { HOST_PARENT_BUDGET, MAX_PARENTS } from '../../../../peer/p2p/parent-pool.ts';
import { measureBytesPerPeerTask, mulberry32 } from '../../../../bench/sim/sim-bench.ts';
import type { TraceEvent, TransferTrace } from '../../../../bench/sim/simulated-peer.ts';
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
    // Each peer dialled parents, and none more than the pool holds at once: nothing failed or stalled.
    expect(r.totals.dials).toBeGreaterThanOrEqual(10);
    expect(r.totals.dials).toBeLessThanOrEqual(10 * MAX_PARENTS);
    // The API travels on the links: each call (a creation or a sync, all scheduling) is a request
    // and an answer with at least a sync channel's frame, TLS and TCP/IP around them (a creation
    // has HTTP's). The piece hashes came from the seed and the parents (piece proofs), not in the
    // syncs' answers: those carry a few parents, grants and counts.
    expect(r.apiBytes.requests).toBeGreaterThan(r.supernode.scheduleCalls * CHANNEL_OVERHEAD.request);
    expect(r.apiBytes.answers).toBeGreaterThan(r.supernode.scheduleCalls * CHANNEL_OVERHEAD.answer);
    expect(r.apiBytes.answers).toBeLessThan(r.supernode.scheduleCalls * (API_RESPONSE_OVERHEAD_BYTES + 2 * r.pieceCount * 4));
  });

  it("the API's messages on links of their own leave the seed's uplink whole; on the seed's host they take their share of it", async () => {
    // The seed's host is the run's first (pollen-swarm.ts); sampled every share window.
    const lowestSeedUpCap = async (apiLinks: 'shared' | 'own'): Promise<number> => {
      let lowest = Number.POSITIVE_INFINITY;
      const r = await runPollenSwarm(options(30, { apiLinks, sample: { everyMs: 20, fn: (_now, _peers, network) => (lowest = Math.min(lowest, network.upCap(0))) } }));
      expect(r.unfinished).toBe(0);
      expect(r.apiBytes.answers).toBeGreaterThan(0);
      return lowest;
    };
    expect(await lowestSeedUpCap('own')).toBe(RATE);
    expect(await lowestSeedUpCap('shared')).toBeLessThan(RATE);
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

  it("pulls an image's layers at once: every peer gets every blob, the seed sends each about once, a host's parents stay within its budget", async () => {
    let overBudget = 0;
    let most = 0;
    const r = await runPollenSwarm(
      options(8, {
        layerShares: [0.4, 0.3, 0.2, 0.1],
        sample: {
          everyMs: 100,
          fn: (_now, peers) => {
            for (const p of peers) {
              const l = p.linkStates();
              const links = l.unchoked + l.choked + l.connecting;
              most = Math.max(most, links);
              if (links > HOST_PARENT_BUDGET) overBudget++;
            }
          },
        },
      }),
    );
    expect(r.unfinished).toBe(0);
    expect(r.blobs.map((b) => b.bytes)).toEqual([0.4, 0.3, 0.2, 0.1].map((share) => Math.floor(32 * MIB * share)));
    const image = r.blobs.reduce((n, b) => n + b.bytes, 0);
    expect(r.pieceCount).toBe(r.blobs.reduce((n, b) => n + b.pieceCount, 0));
    expect(r.totals.fromSeed + r.totals.fromPeers).toBe(8 * image);
    expect(r.totals.fromSeed).toBe(image);
    expect(r.fallbacks).toBe(0);
    // The peer is done with its last blob; the run with the last peer.
    expect(Math.max(...r.blobs.map((b) => b.allDoneMs))).toBe(r.allDoneMs);
    // Four transfers share the host's budget (3 parents each): one transfer alone would take MAX_PARENTS.
    expect(most).toBeGreaterThan(MAX_PARENTS);
    expect(overBudget).toBe(0);
  });

  it('streams the blobs to the seed at once, sharing the registry: byte p of a blob arrives when every stream has min(p, its size)', () => {
    const [a, b] = simBlobs(4 * MIB, [0.75, 0.25], MIB);
    expect([a!.bytes, b!.bytes]).toEqual([3 * MIB, MIB]);
    expect([a!.pieceCount, b!.pieceCount]).toEqual([3, 1]);
    const stream = new SeedStream({ now: 0, at: () => {} }, [a!.bytes, b!.bytes], MIB);
    // Both streams at half the rate until the small one ends at 2 s, then the large one alone.
    expect([1, 2, 3].map((m) => stream.plannedAt(m * MIB))).toEqual([2_000, 3_000, 4_000]);
    expect(a!.digest).not.toBe(b!.digest);
    // One blob: the stream alone, a piece per piece time.
    const [only] = simBlobs(4 * MIB, [1], MIB);
    const alone = new SeedStream({ now: 0, at: () => {} }, [only!.bytes], MIB);
    expect([1, 4].map((m) => alone.plannedAt(m * MIB))).toEqual([1_000, 4_000]);
    expect(() => simBlobs(MIB, [], undefined)).toThrow(/layer shares/);
    // A single share is that share of S, as any other.
    expect(simBlobs(4 * MIB, [0.5], undefined).map((x) => x.bytes)).toEqual([2 * MIB]);
  });

  it('the streams get what the rate allows when it changes, and a wait ends when its bytes came', () => {
    const queue = new EventQueue();
    const [a, b] = seededBlobs(simBlobs(4 * MIB, [0.75, 0.25], MIB), new SeedStream(queue, [3 * MIB, MIB], MIB));
    const stream = new SeedStream(queue, [3 * MIB, MIB], MIB);
    const ends: Array<[string, number]> = [];
    stream.whenHas(MIB, () => ends.push(['small', queue.now]));
    stream.whenHas(2 * MIB, () => ends.push(['second', queue.now]));
    // Half the rate from 1 s (the requests took half the downlink), all of it again from 3 s.
    queue.at(1_000, () => stream.setRate(MIB / 2));
    queue.at(3_000, () => stream.setRate(MIB));
    queue.at(3_500, () => ends.push(['has 1.75 MiB', Number(stream.has(1.75 * MIB))]));
    queue.run({ untilMs: 10_000 });
    // 0.5 MiB each by 1 s, 1 MiB each by 3 s (the small one ends), the large one alone from there.
    expect(ends).toEqual([['small', 3_000], ['has 1.75 MiB', 0], ['second', 4_000]]);
    expect(b!.seedHas(0)).toBe(true);
    expect(a!.seedPieces()).toBe(3);
  });

  it('the seed sends a piece on as it arrives from the registry, and never finishes it before its last byte came', async () => {
    const trace: TransferTrace = { events: [], decisions: [] };
    // One peer pulling three layers from a slow registry: each stream comes at a third of the rate the
    // seed sends a piece at, and the peer asks for each layer's first piece before it has arrived.
    const origin = RATE / 20;
    const r = await runPollenSwarm(options(1, { blobBytes: 8 * MIB, layerShares: [0.5, 0.25, 0.25], originUpBytesPerS: origin, trace: { peerId: simPeerId(0), into: trace } }));
    expect(r.unfinished).toBe(0);
    // At the registry's rate (the one peer's requests take next to nothing of the downlink): each
    // piece's arrival is no earlier than that.
    const [first] = simBlobs(8 * MIB, [0.5, 0.25, 0.25], undefined);
    const stream = new SeedStream({ now: 0, at: () => {} }, [4 * MIB, 2 * MIB, 2 * MIB], origin);
    const arrivedMs = (i: number): number => stream.plannedAt(Math.min((i + 1) * first!.pieceBytes, first!.bytes));
    const late = trace.events.filter((e): e is Extract<TraceEvent, { kind: 'seed' }> => e.kind === 'seed').map((e) => e.t - arrivedMs(e.index));
    expect(late.length).toBeGreaterThan(0);
    expect(Math.min(...late)).toBeGreaterThanOrEqual(0);
    // Sent on as it came, not stored first and then sent (half a piece's time at the registry's rate: 420 ms).
    expect(Math.min(...late)).toBeLessThan(((first!.pieceBytes / origin) * 1000) / 2);
  });

  it('is held back by a shared CPU that cannot carry every link at once', async () => {
    const free = await runPollenSwarm(options(8));
    // 8 peers at 12.5 MB/s, 100 ns per byte received + sent: 10 cores' worth asked of 1.
    const starved = await runPollenSwarm(options(8, { cpu: { cores: 1, peerReceiveNsPerByte: 60, peerSendNsPerByte: 40 } }));
    expect(starved.unfinished).toBe(0);
    expect(starved.allDoneMs).toBeGreaterThan(1.5 * free.allDoneMs);
    // Crowding that cheapens each byte gives some of it back.
    const crowded = await runPollenSwarm(options(8, { cpu: { cores: 1, peerReceiveNsPerByte: 60, peerSendNsPerByte: 40, contention: 0.5 } }));
    expect(crowded.unfinished).toBe(0);
    expect(crowded.allDoneMs).toBeLessThan(0.8 * starved.allDoneMs);
    expect(crowded.allDoneMs).toBeGreaterThan(free.allDoneMs);
  });

  it('runs each host\'s fixed CPU before its pull, on the shared cores', async () => {
    const free = await runPollenSwarm(options(4, { cpu: { cores: 2, peerReceiveNsPerByte: 0, peerSendNsPerByte: 0 } }));
    // 4 hosts x 1 CPU s on 2 cores: no peer starts its pull before 2 s.
    const fixed = await runPollenSwarm(options(4, { cpu: { cores: 2, peerReceiveNsPerByte: 0, peerSendNsPerByte: 0, hostCpuS: 1 } }));
    expect(fixed.unfinished).toBe(0);
    expect(Math.min(...fixed.doneMs)).toBeGreaterThan(2000 + Math.min(...free.doneMs) - 250);
    expect(fixed.allDoneMs).toBeGreaterThanOrEqual(free.allDoneMs + 1500);
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
