// One simulated Pollen fan-out: N peers pull an image of S bytes at (about) the same instant: one
// blob, or several layers at once (`layerShares`, as the fan-out bed's image: bench/fanout/image.ts).
// The supernode is the real Tracker + Scheduler (sim-supernode.ts), each peer runs a real P2pTransfer
// per blob through its seams (simulated-peer.ts, sim-wire.ts), on the fluid network model
// (network.ts). The seed is the supernode host (upload-capped like the registry) and receives each
// blob from the registry once, in order, the blobs' streams sharing the registry's rate (a piece can
// leave the seed once it has arrived); a registry host with the same cap serves peers that fall
// back (its streams to the seed are not modelled as competing with those fallbacks). The API's
// requests and answers queue on the supernode host's links and the seed's pieces get what the
// answers leave of its uplink (sim-api.ts).
import type { Digest } from '../../src/digest.ts';
import type { SchedulerOptions } from '../../supernode/p2p/scheduler-options.ts';
import { EventQueue } from './event-queue.ts';
import { SimNetwork, type HostId } from './network.ts';
import type { TransferTimings } from '../../peer/p2p/transfer-seams.ts';
import { DUPLICATE_CAUSES, type DuplicateCause } from '../../peer/p2p/piece-ledger.ts';
import { SimulatedPeer, type TransferTrace } from './simulated-peer.ts';
import { seededBlobs, simBlobs } from './sim-blobs.ts';
import { SimSupernode, type SupernodeStats } from './sim-supernode.ts';
import { API_SHARE_WINDOW_MS, apiDownlinkShare, apiUplinkShare, type ApiBytes, type ApiLines } from './sim-api.ts';
import { SeedStream } from './seed-stream.ts';
import { mulberry32 } from './seeded-random.ts';
import { DEFAULT_UPLOAD_SLOTS } from '../../peer/p2p/upload-slots.ts';

export interface PeerCounters {
  fromPeers: number;
  fromSeed: number;
  fromRegistry: number;
  /** Bytes received and thrown away (the transfer's own count, all causes). */
  duplicate: number;
  duplicateByCause: Record<DuplicateCause, number>;
  /** Bytes that reached the peers over the network (cancelled blocks already on the way included). */
  networkReceived: number;
  stalls: number;
  starvedGrants: number;
  /** Connections the transfers opened to parents (each a TLS and two wire handshakes on a real peer). */
  dials: number;
}

export interface PollenSwarmOptions {
  peers: number;
  /** The image's bytes (S). */
  blobBytes: number;
  /**
   * How S is split into the blobs every peer pulls at once (default [1]: one blob). The bed's image
   * is [0.4, 0.3, 0.2, 0.1] (bench/fanout/layers.ts's LAYER_SHARES); shares are of S, as there.
   */
  layerShares?: readonly number[];
  /** Piece size (default: the supernode's layout for a cluster of `peers`, pieceSizeForSwarm of each blob's size). */
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
  /** The transfer's timings (default DEFAULT_TIMINGS of peer/p2p/p2p-transfer.ts). */
  timings?: Partial<TransferTimings>;
  scheduler?: Partial<SchedulerOptions>;
  /** The supernode's --sync-rate (its pacing of the peers' syncs; default the supernode's). */
  syncRate?: number;
  /** The supernode's --sync-answer-rate, bytes a second (default the supernode's). */
  syncAnswerRate?: number;
  /**
   * Where the supernode API's requests and answers queue (sim-api.ts): on the seed's host links,
   * before its pieces and its stream from the registry (`shared`, the default: Pollen's supernode is
   * scheduler and seed in one process on one host), or on links of their own at the origin's rate
   * (`own`: a scheduler on a host apart from its seed, as Dragonfly 2 runs them), leaving the seed's
   * links whole. A layout for weighing that split; the product runs `shared`.
   */
  apiLinks?: 'shared' | 'own';
  /**
   * The machine's CPU, shared by the peers' processes (default: free). The fan-out bed runs every
   * host on the same 2 cores, and there a Pollen peer's CPU per byte limits the swarm before its links.
   */
  cpu?: SwarmCpu;
  /** The network model's rate recompute quantum, ms (network.ts; default NETWORK_QUANTUM_MS). */
  networkQuantumMs?: number;
  /** Give up after this much simulated time (default 1 h). */
  maxSimMs?: number;
  /** Records what reaches this peer's transfer and what it decides (simulated-peer.ts). */
  trace?: { peerId: string; into: TransferTrace };
  /** Called every everyMs of simulated time while the run lasts (time series for diagnosis). */
  sample?: { everyMs: number; fn: (nowMs: number, peers: readonly SimulatedPeer[], network: SimNetwork, api: Readonly<ApiBytes>) => void };
}

/** What the peers' hosts cost the machine's cores (network.ts); agreement.ts fits it to the bed. */
export interface SwarmCpu {
  cores: number;
  peerReceiveNsPerByte: number;
  peerSendNsPerByte: number;
  /**
   * CPU s a host's pull costs whatever the image's size (agreement.ts fits it to the bed, ~0.3-0.75
   * s), run on the shared cores before the host's pull starts (default 0). The bed tells how much,
   * not when in a pull it falls. Before the pull is the simplest place: N hosts starting together on
   * C cores start their pulls N x hostCpuS / C later.
   */
  hostCpuS?: number;
  /** How much cheaper a byte gets on a crowded machine (network.ts's `contention`; default 0). */
  contention?: number;
}

export interface PollenSwarmResult {
  /** Pieces of all the blobs, and the first blob's piece size. */
  pieceCount: number;
  pieceBytes: number;
  /** The blobs each peer pulled: their bytes, pieces, and when the last peer had each (NaN: not every peer did). */
  blobs: Array<{ bytes: number; pieceCount: number; allDoneMs: number }>;
  doneMs: number[];
  allDoneMs: number;
  medianMs: number;
  /** Bytes of pieces the seed sent. */
  seedSentBytes: number;
  /** The supernode API's bytes on the links: requests to the supernode's host and answers from it (sim-api.ts). */
  apiBytes: ApiBytes;
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

/**
 * Simulated peer `i`'s id: 40 hex digits, as long as the agent's random one (peer/p2p/p2p-agent.ts),
 * since the answers that name parents, and the requests that name bad ones, carry it.
 */
export function simPeerId(i: number): string {
  return i.toString(16).padStart(40, '0');
}

/** Simulated peer `i`'s wire address: a host address and the peer's default wire port, as the bed's. */
export function simWireAddr(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:65002`;
}

/** The peer's upload slots as it runs unconfigured (peer/config.ts); the bed's start spread and latencies. */
export const SIM_DEFAULTS = { uploadSlots: DEFAULT_UPLOAD_SLOTS, startSpreadMs: 100, accessLatencyMs: [0.5, 2.5] as const };

export async function runPollenSwarm(o: PollenSwarmOptions): Promise<PollenSwarmResult> {
  const wall = performance.now();
  const queue = new EventQueue();
  const [lo, hi] = o.accessLatencyMs ?? SIM_DEFAULTS.accessLatencyMs;
  const access: number[] = [];
  const network = new SimNetwork(queue, { latencyMs: (a, b) => access[a]! + access[b]!, quantumMs: o.networkQuantumMs ?? NETWORK_QUANTUM_MS, ...(o.cpu ? { cores: o.cpu.cores, contention: o.cpu.contention ?? 0 } : {}) });
  const addHost = (up: number, down: number, cpu?: { receiveNsPerByte: number; sendNsPerByte: number }): HostId => {
    access.push(lo + (hi - lo) * o.random());
    return network.addHost({ upBytesPerS: up, downBytesPerS: down, ...cpu });
  };
  const peerCpu = o.cpu && { receiveNsPerByte: o.cpu.peerReceiveNsPerByte, sendNsPerByte: o.cpu.peerSendNsPerByte };
  const seedHost = addHost(o.originUpBytesPerS, o.originUpBytesPerS);
  const registryHost = addHost(o.originUpBytesPerS, o.originUpBytesPerS);
  const shapes = simBlobs(o.blobBytes, o.layerShares ?? [1], o.pieceBytes, o.peers);
  const stream = new SeedStream(queue, shapes.map((b) => b.bytes), o.originUpBytesPerS);
  const blobs = seededBlobs(shapes, stream);
  // The scheduler's scan windows (supernode/p2p/scan-window.ts) draw from their own numbers, seeded last (below).
  let scanRandom: () => number = () => 0;
  const supernode = new SimSupernode(
    { queue, random: () => scanRandom() },
    { tasks: blobs.map((b) => ({ digest: b.digest, pieceCount: b.pieceCount, seedHasAt: (i) => b.seedHas(i) })), scheduler: o.scheduler, ...(o.syncRate === undefined ? {} : { syncRate: o.syncRate }), ...(o.syncAnswerRate === undefined ? {} : { syncAnswerRate: o.syncAnswerRate }) },
  );
  const peers = new Map<string, SimulatedPeer>();
  let remaining = o.peers;
  let seedLastMs = NaN;
  // The supernode API's messages on the supernode (seed) host's links (sim-api.ts).
  const apiBytes: ApiBytes = { requests: 0, answers: 0 };
  const apiLines: ApiLines = { upBytesPerS: o.originUpBytesPerS, downBytesPerS: o.originUpBytesPerS, upFreeAt: 0, downFreeAt: 0, upBytesSinceShare: 0, downBytesSinceShare: 0 };
  // Every block and piece body is a view of this one buffer: the simulation names pieces, it does not hash them.
  const blank = Buffer.alloc(Math.max(...blobs.map((b) => b.pieceBytes), 1));
  const world = {
    queue,
    network,
    supernode,
    seedHost,
    registryHost,
    blobs,
    apiBytes,
    apiLines,
    latency: (a: HostId, b: HostId) => access[a]! + access[b]!,
    body: (length: number) => blank.subarray(0, length),
    peer: (wireAddr: string) => peers.get(wireAddr),
    onDone: () => void remaining--,
    onSeedPiece: (atMs: number) => void (seedLastMs = atMs),
    pickSeed: 0,
  };
  const peerOptions = { uploadSlots: o.uploadSlots ?? SIM_DEFAULTS.uploadSlots, timings: o.timings ?? {} };
  const list: SimulatedPeer[] = [];
  for (let i = 0; i < o.peers; i++) {
    const id = simPeerId(i);
    const peer = new SimulatedPeer(world, id, simWireAddr(i), addHost(o.peerUpBytesPerS, o.peerDownBytesPerS, peerCpu), o.trace?.peerId === id ? { ...peerOptions, trace: o.trace.into } : peerOptions);
    peers.set(peer.wireAddr, peer);
    list.push(peer);
  }
  supernode.start();
  // The agents run before the pull: each registered when it started.
  for (const peer of list) peer.joinCluster();
  const spread = o.startSpreadMs ?? SIM_DEFAULTS.startSpreadMs;
  const hostCpuS = o.cpu?.hostCpuS ?? 0;
  for (const peer of list) queue.at(spread * o.random(), () => (hostCpuS > 0 ? network.compute(peer.host, hostCpuS, () => peer.start()) : peer.start()));
  // Drawn after every other number of the run, so its start jitter and latencies stay what they were.
  world.pickSeed = Math.floor(o.random() * 2 ** 32);
  scanRandom = mulberry32(world.pickSeed ^ 0x5bd1e995);
  // The seed's pieces get what the API's answers leave of the supernode host's uplink, its streams
  // from the registry what the requests leave of the downlink (set again when it moved over 0.5 %).
  const share = (): void => {
    apiUplinkShare(apiLines, (bytesPerS) => network.setUpCap(seedHost, bytesPerS));
    apiDownlinkShare(apiLines, o.originUpBytesPerS, (bytesPerS) => {
      if (Math.abs(bytesPerS - stream.bytesPerS) > stream.bytesPerS / 200) stream.setRate(bytesPerS);
    });
    if (remaining > 0) queue.after(API_SHARE_WINDOW_MS, share);
  };
  if ((o.apiLinks ?? 'shared') === 'shared') queue.at(API_SHARE_WINDOW_MS, share);
  const sample = o.sample;
  if (sample) {
    const tick = (): void => {
      sample.fn(queue.now, list, network, apiBytes);
      if (remaining > 0) queue.after(sample.everyMs, tick);
    };
    queue.at(0, tick);
  }
  await queue.runSettling({ stop: () => remaining === 0, untilMs: o.maxSimMs ?? 3_600_000 });
  for (const p of list) for (const t of p.transfers.values()) await t.close();
  supernode.close();
  const doneMs = list.map((p) => p.doneMs);
  const totals: PeerCounters = { fromPeers: 0, fromSeed: 0, fromRegistry: 0, duplicate: 0, duplicateByCause: Object.fromEntries(DUPLICATE_CAUSES.map((c) => [c, 0])) as Record<DuplicateCause, number>, networkReceived: 0, stalls: 0, starvedGrants: 0, dials: 0 };
  for (const p of list) {
    totals.networkReceived += network.receivedBytes(p.host);
    for (const t of p.transfers.values()) {
      totals.fromPeers += t.counters.peer;
      totals.fromSeed += t.counters.seed;
      totals.fromRegistry += t.counters.upstream;
      for (const c of DUPLICATE_CAUSES) {
        totals.duplicateByCause[c] += t.stats.duplicateBytes[c];
        totals.duplicate += t.stats.duplicateBytes[c];
      }
      totals.stalls += t.stats.stalls;
      totals.starvedGrants += t.stats.starvedGrants;
      totals.dials += t.stats.dials;
    }
  }
  return {
    pieceCount: blobs.reduce((n, b) => n + b.pieceCount, 0),
    pieceBytes: blobs[0]!.pieceBytes,
    blobs: blobs.map((b) => ({ bytes: b.bytes, pieceCount: b.pieceCount, allDoneMs: Math.max(...list.map((p) => p.blobDoneMs.get(b.digest) ?? NaN)) })),
    doneMs,
    allDoneMs: remaining === 0 ? Math.max(...doneMs) : NaN,
    medianMs: quantileMs(doneMs, 0.5),
    seedSentBytes: network.sentBytes(seedHost),
    apiBytes: { ...apiBytes },
    seedLastMs,
    registrySentBytes: network.sentBytes(registryHost),
    peersSentBytes: list.reduce((sum, p) => sum + network.sentBytes(p.host), 0),
    fallbacks: list.reduce((n, p) => n + [...p.transfers.values()].reduce((k, t) => k + t.stats.fallbacks, 0), 0),
    totals,
    supernode: { ...supernode.stats },
    events: queue.eventsRun,
    wallMs: performance.now() - wall,
    unfinished: remaining,
  };
}

/** The q-quantile of the peers' done times, the unfinished left out (NaN when none finished). */
export function quantileMs(times: readonly number[], q: number): number {
  const done = times.filter(Number.isFinite).sort((a, b) => a - b);
  return done[Math.min(done.length - 1, Math.floor(q * done.length))] ?? NaN;
}
