// One simulated Pollen fan-out: N peers pull one blob of S bytes at (about) the same instant. The
// supernode is the real Tracker + Scheduler (sim-supernode.ts), each peer the model of P2pTransfer
// with the real piece picker (sim-peer.ts), on the fluid network model (network.ts). The seed is
// supernode host (upload-capped like the registry) and receives the blob from the registry once,
// in order, at the registry's rate (a piece can leave the seed once it has arrived); a registry
// host with the same cap serves peers that fall back (its stream to the seed is not modelled as
// competing with those fallbacks).
import { createHash } from 'node:crypto';
import type { Digest } from '../../src/digest.ts';
import { pieceCountFor, pieceSizeFor } from '../../src/p2p/metainfo.ts';
import type { SchedulerOptions } from '../../supernode/p2p/scheduler.ts';
import { EventQueue } from './event-queue.ts';
import { SimNetwork, type HostId } from './network.ts';
import { SimPeer, type PeerCounters } from './sim-peer.ts';
import { SimSupernode, type SupernodeStats } from './sim-supernode.ts';

export interface PollenSwarmOptions {
  peers: number;
  blobBytes: number;
  /** Piece size (default: the real layout, pieceSizeFor(blobBytes)). */
  pieceBytes?: number;
  peerUpBytesPerS: number;
  peerDownBytesPerS: number;
  originUpBytesPerS: number;
  /** Seeded random in [0, 1): start jitter and per-host access latency. */
  random: () => number;
  /** Peers start uniformly within this many ms (default 100). */
  startSpreadMs?: number;
  /** One-way latency of a host's access link is uniform in [min, max] ms; a path adds both ends (default 0.5-2.5). */
  accessLatencyMs?: readonly [number, number];
  uploadSlots?: number;
  piecesPerParent?: number;
  syncMs?: number;
  noProgressMs?: number;
  scheduler?: Partial<SchedulerOptions>;
  /** The network model's rate recompute quantum, ms (network.ts; default NETWORK_QUANTUM_MS). */
  networkQuantumMs?: number;
  /** Give up after this much simulated time (default 1 h). */
  maxSimMs?: number;
  /** Called every everyMs of simulated time while the run lasts (time series for diagnosis). */
  sample?: { everyMs: number; fn: (nowMs: number, peers: readonly SimPeer[], network: SimNetwork) => void };
}

export interface PollenSwarmResult {
  pieceCount: number;
  pieceBytes: number;
  doneMs: number[];
  allDoneMs: number;
  medianMs: number;
  seedSentBytes: number;
  /** When the last piece from the seed arrived. */
  seedLastMs: number;
  registrySentBytes: number;
  /** Bytes all peers uploaded (to each other, duplicates included). */
  peersSentBytes: number;
  fallbacks: number;
  totals: PeerCounters;
  supernode: SupernodeStats;
  events: number;
  wallMs: number;
  /** Peers that had not finished when maxSimMs passed (0 when the run completed). */
  unfinished: number;
}

/**
 * Rates are recomputed at most every 5 ms: below a piece's transfer time (84 ms for 1 MiB at
 * 100 Mbit/s) and about a LAN round trip, while a 10,000-peer run stays within minutes.
 */
export const NETWORK_QUANTUM_MS = 5;

/** Defaults of peer/config.ts (uploadSlots) and peer/p2p/p2p-transfer.ts (DEFAULT_TIMINGS). */
export const SIM_DEFAULTS = { uploadSlots: 10, piecesPerParent: 1, syncMs: 500, noProgressMs: 30_000, startSpreadMs: 100, accessLatencyMs: [0.5, 2.5] as const };

export function runPollenSwarm(o: PollenSwarmOptions): PollenSwarmResult {
  const wall = performance.now();
  const pieceBytes = o.pieceBytes ?? pieceSizeFor(o.blobBytes);
  const pieceCount = pieceCountFor(o.blobBytes, pieceBytes);
  const queue = new EventQueue();
  const [lo, hi] = o.accessLatencyMs ?? SIM_DEFAULTS.accessLatencyMs;
  const access: number[] = [];
  const network = new SimNetwork(queue, { latencyMs: (a, b) => access[a]! + access[b]!, quantumMs: o.networkQuantumMs ?? NETWORK_QUANTUM_MS });
  const addHost = (up: number, down: number): HostId => {
    access.push(lo + (hi - lo) * o.random());
    return network.addHost({ upBytesPerS: up, downBytesPerS: down });
  };
  const seedHost = addHost(o.originUpBytesPerS, o.originUpBytesPerS);
  const registryHost = addHost(o.originUpBytesPerS, o.originUpBytesPerS);
  const digest = `sha256:${createHash('sha256').update(`sim-${o.blobBytes}`).digest('hex')}` as Digest;
  const seedReadyAtMs = (i: number): number => (((i + 1) * pieceBytes) / o.originUpBytesPerS) * 1000;
  const supernode = new SimSupernode({ queue }, { digest, pieceCount, scheduler: o.scheduler, seedHas: (i, now) => seedReadyAtMs(i) <= now });
  const peers = new Map<string, SimPeer>();
  let remaining = o.peers;
  let seedLastMs = NaN;
  const world = {
    queue,
    network,
    supernode,
    seedHost,
    registryHost,
    peers,
    latency: (a: HostId, b: HostId) => access[a]! + access[b]!,
    // The seed streams the blob from the registry once, in order, at the registry's upload rate.
    seedReadyAtMs,
    onDone: () => void remaining--,
    onSeedPiece: (atMs: number) => void (seedLastMs = atMs),
  };
  const peerOptions = {
    pieceCount,
    pieceBytes,
    uploadSlots: o.uploadSlots ?? SIM_DEFAULTS.uploadSlots,
    piecesPerParent: o.piecesPerParent ?? SIM_DEFAULTS.piecesPerParent,
    syncMs: o.syncMs ?? SIM_DEFAULTS.syncMs,
    noProgressMs: o.noProgressMs ?? SIM_DEFAULTS.noProgressMs,
  };
  const list: SimPeer[] = [];
  for (let i = 0; i < o.peers; i++) {
    const peer = new SimPeer(world, `peer-${i}`, addHost(o.peerUpBytesPerS, o.peerDownBytesPerS), peerOptions);
    peers.set(peer.peerId, peer);
    list.push(peer);
  }
  supernode.start();
  const spread = o.startSpreadMs ?? SIM_DEFAULTS.startSpreadMs;
  for (const peer of list) queue.at(spread * o.random(), () => peer.start());
  const sample = o.sample;
  if (sample) {
    const tick = (): void => {
      sample.fn(queue.now, list, network);
      if (remaining > 0) queue.after(sample.everyMs, tick);
    };
    queue.at(0, tick);
  }
  queue.run({ stop: () => remaining === 0, untilMs: o.maxSimMs ?? 3_600_000 });
  supernode.close();
  const doneMs = list.map((p) => p.doneMs);
  const finished = doneMs.filter(Number.isFinite).sort((a, b) => a - b);
  const totals: PeerCounters = { fromPeers: 0, fromSeed: 0, fromRegistry: 0, duplicate: 0 };
  for (const p of list) for (const k of Object.keys(totals) as (keyof PeerCounters)[]) totals[k] += p.counters[k];
  return {
    pieceCount,
    pieceBytes,
    doneMs,
    allDoneMs: remaining === 0 ? Math.max(...doneMs) : NaN,
    medianMs: finished[Math.floor(finished.length / 2)] ?? NaN,
    seedSentBytes: network.sentBytes(seedHost),
    seedLastMs,
    registrySentBytes: network.sentBytes(registryHost),
    peersSentBytes: list.reduce((sum, p) => sum + network.sentBytes(p.host), 0),
    fallbacks: list.filter((p) => p.mode === 'fallback' || p.counters.fromRegistry > 0).length,
    totals,
    supernode: { ...supernode.stats },
    events: queue.eventsRun,
    wallMs: performance.now() - wall,
    unfinished: remaining,
  };
}
