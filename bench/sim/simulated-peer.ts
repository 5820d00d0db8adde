// One simulated Pollen peer: the REAL transfers (peer/p2p/p2p-transfer.ts: its piece picker,
// windows, stall, starve and endgame rules, and the parent pool), one per blob of the image, all at
// once as a pull's layers are, sharing the host's parent budget (parentsPerTransfer), its upload
// slots and its one seed connection as a real peer's do, and running on simulated time through
// its seams: a QueueClock, a dialer whose connections move blocks over the network model
// (sim-wire.ts), a supernode client that calls the real Tracker and Scheduler over the network
// model (sim-supernode.ts, sim-api.ts), the seed and the registry as upload-capped hosts. Modelled
// here, not the product's code: the agent's register/heartbeat calls, writes (instant) and hashes
// (a piece is named, not hashed). The upload side uses the uploader's slots (peer/p2p/upload-slots.ts).
import { Readable } from 'node:stream';
import { pino } from 'pino';
import type { Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import { Bitfield } from '../../src/p2p/bitfield.ts';
import { BLOCK_BYTES } from '../../src/p2p/metainfo.ts';
import type { PieceProof } from '../../src/p2p/piece-proof.ts';
import { asShaped, readSyncAnswer, readTaskAnswer, syncAnswer, syncItem, taskAnswer, type SyncAnswerJson } from '../../src/p2p/sync-answer.ts';
import { SYNC_FIELDS, type HeartbeatBody, type MetainfoBody, type SyncResponse, type TaskAnswer } from '../../src/p2p/supernode-api.ts';
import type { BlobFetchRequest } from '../../peer/blob-downloader.ts';
import { busyHeartbeatMs, reportEveryMs, sparedHeartbeatMs } from '../../peer/p2p/p2p-agent.ts';
import { parentsPerTransfer } from '../../peer/p2p/parent-pool.ts';
import { P2pTransfer } from '../../peer/p2p/p2p-transfer.ts';
import { seedLeasesPerTransfer } from '../../peer/p2p/seed-grants.ts';
import { DEFAULT_TIMINGS, type TransferClient, type TransferTimings, type UpstreamFetch } from '../../peer/p2p/transfer-seams.ts';
import { UploadSlots } from '../../peer/p2p/upload-slots.ts';
import { withUnpackedHashes, type SeedPieceAnswer } from '../../peer/p2p/supernode-answers.ts';
import { ReportTurn, SYNC_ANSWER_OPTIONS, TASK_ANSWER_OPTIONS } from '../../peer/p2p/sync-batch.ts';
import { pacedMs } from '../../peer/p2p/transfer-sync.ts';
import type { EventQueue } from './event-queue.ts';
import type { HostId, SimNetwork } from './network.ts';
import { QueueClock } from './queue-clock.ts';
import { apiCall, CHANNEL_OVERHEAD, jsonBytes, reportJsonBytes, simReport, type ApiBytes, type ApiEnds, type ApiLines } from './sim-api.ts';
import { ParentEnd, SIM_PROOF_CHECK, SIM_SIGNATURE, SimLink, type LinkObserver, type UploadSide, type WireWorld } from './sim-wire.ts';
import type { SimSupernode } from './sim-supernode.ts';
import { HEARTBEAT_MS } from '../../supernode/p2p/tracker.ts';
import type { SimBlob } from './sim-blobs.ts';
import { mulberry32, transferSeed } from './seeded-random.ts';
import type { TransferTrace } from './transfer-trace.ts';
export type { TraceEvent, TransferTrace } from './transfer-trace.ts';
/** The hash every simulated piece carries (pieces are named by index, not hashed). */
export const SIM_HASH = '0'.repeat(64);
const silent = pino({ level: 'silent' });

export interface SimWorld extends WireWorld {
  readonly supernode: SimSupernode;
  readonly seedHost: HostId;
  readonly registryHost: HostId;
  /** What each peer pulls, all at once; the first is the one a trace follows. */
  readonly blobs: readonly SimBlob[];
  /** The run's seed of its transfers' own numbers (seeded-random.ts transferSeed). */
  readonly pickSeed: number;
  /** The supernode API's bytes, and its host's links as the API's messages queue on them (sim-api.ts). */
  readonly apiBytes: ApiBytes;
  readonly apiLines: ApiLines;
  /** The peer whose wire listens at `wireAddr` (what the supernode's parents name). */
  peer(wireAddr: string): SimulatedPeer | undefined;
  onDone(peer: SimulatedPeer): void;
  onSeedPiece(atMs: number): void;
}

export interface SimulatedPeerOptions {
  uploadSlots: number;
  timings: Partial<TransferTimings>;
  /** Follows the transfer of the world's first blob. */
  trace?: TransferTrace;
}

/** Spreads the peers' heartbeat phases evenly whatever their number (the golden ratio's fraction). */
const GOLDEN_FRACTION = 0.6180339887498949;

export class SimulatedPeer implements UploadSide {
  /** When the last of its blobs was done (NaN until then). */
  doneMs = NaN;
  /** Its transfers by blob, once started. */
  readonly transfers = new Map<Digest, P2pTransfer>();
  /** When each blob's transfer was done. */
  readonly blobDoneMs = new Map<Digest, number>();
  private readonly clock: QueueClock;
  /** Children by blob (a link serves one). */
  private readonly children = new Map<Digest, Set<SimLink>>();
  /** Transfers running (the real peer's LocalPieces.activeTransfers: what its parent budget is shared by). */
  private active = 0;
  /** Task creations under way (their transfers about to start). */
  private creating = 0;
  private readonly slots: UploadSlots<ParentEnd>;
  private readonly ends = new Map<SimLink, ParentEnd>();
  private readonly dialled: SimLink[] = [];
  /** Resolves once the last seed piece asked for has been sent (or given up). */
  private seedLine: Promise<void> = Promise.resolve();
  /** The heartbeat's report as SupernodeClient carries it: when a request last did (0: never), one request at a time. */
  private readonly reports = new ReportTurn();
  /** The wait the last sync answer asked (its `syncMs`; 0: none), as SupernodeClient keeps it. */
  private syncWaitMs = 0;
  /** The busy period the last heartbeat answer asked, as the agent keeps it. */
  private busyAsked: number | undefined;

  constructor(
    private readonly world: SimWorld,
    readonly peerId: string,
    readonly wireAddr: string,
    readonly host: HostId,
    private readonly options: SimulatedPeerOptions,
  ) {
    this.clock = new QueueClock(world.queue);
    this.slots = new UploadSlots({ slots: options.uploadSlots });
  }

  /** The pieces of `digest` this peer holds. */
  pieces(blob: SimBlob): Bitfield {
    return this.transfers.get(blob.digest)?.pieces ?? new Bitfield(blob.pieceCount);
  }

  /** Parent links of this peer as a child: ready and unchoked, ready but choked, still connecting. */
  linkStates(): { unchoked: number; choked: number; connecting: number } {
    const r = { unchoked: 0, choked: 0, connecting: 0 };
    for (const l of this.dialled) {
      if (l.isClosed) continue;
      r[!l.isReady ? 'connecting' : l.peerChoking ? 'choked' : 'unchoked']++;
    }
    return r;
  }

  /** The peer's agent starts, before the pull: it registers (P2pAgent.start), so its downloader need not. */
  joinCluster(): void {
    this.world.supernode.registerBeforePull(this.peerId, this.wireAddr, this.options.uploadSlots);
  }

  /** The pull starts: the tasks are created (a round trip each, as P2pDownloader does for a registered agent), then the transfers run. */
  start(): void {
    const { queue, supernode } = this.world;
    const digests = this.world.blobs.map((b) => b.digest);
    // A peer downloading or serving children beats as often as the agent does when busy (every
    // second, or as the supernode's pacing asks: peer/p2p/p2p-agent.ts): a simulated peer is one
    // or the other until the run ends. The scheduling does not depend on it; the supernode's work
    // does. The agents ran before the pull, so their beats keep phases of their own across the
    // idle period (spread by the host's index, not the run's random numbers). A sync carries the
    // report as the agent's do, and spares the beats of an idle period after it (P2pAgent.keepAlive).
    const beat = (): void => {
      const spared = sparedHeartbeatMs(queue.now, this.reports.lastAt, HEARTBEAT_MS);
      if (spared > 0) return void queue.after(spared, beat);
      const answer = supernode.heartbeat(this.peerId);
      if (!answer) supernode.registerAndJoin(this.peerId, this.wireAddr, this.options.uploadSlots, digests);
      this.busyAsked = answer?.busyHeartbeatMs;
      queue.after(busyHeartbeatMs(HEARTBEAT_MS, this.busyAsked), beat);
    };
    queue.after(HEARTBEAT_MS * ((this.host * GOLDEN_FRACTION) % 1), beat);
    // Each blob's task is created (a round trip), its answer carrying the first schedule.
    for (const blob of this.world.blobs) this.startTransfer(blob);
  }

  /** Creates the blob's task as the peer's downloader does (with a first sync), then runs the transfer on its answer. */
  private startTransfer(blob: SimBlob): void {
    const { world } = this;
    const trace = blob === world.blobs[0] ? this.options.trace : undefined;
    const client = this.client(blob, trace);
    const request = { digest: blob.digest, sizeHint: blob.bytes, upstream: { baseUrl: 'sim://registry', name: 'sim', authorization: undefined } };
    // The seed leases asked are shared with the transfers running and being created (peer/p2p/p2p-downloader.ts).
    this.creating++;
    void client
      // It resumes nothing and reads piece proofs: the metainfo comes without hashes (as P2pDownloader asks).
      .createTask('sim', { digest: blob.digest, sizeHint: blob.bytes, upstream: { registry: 'sim', name: 'sim' }, first: { wantSeed: seedLeasesPerTransfer(this.active + this.creating) }, withoutHashes: true })
      .finally(() => this.creating--)
      .then(({ first, ...meta }) => this.runTransfer(blob, client, trace, request, meta, first));
  }

  private runTransfer(blob: SimBlob, client: TransferClient, trace: TransferTrace | undefined, request: BlobFetchRequest, meta: MetainfoBody, first: SyncResponse | undefined): void {
    const { world } = this;
    const seed = transferSeed(world.pickSeed, parseInt(this.peerId, 16), world.blobs.indexOf(blob));
    trace?.events.push({ t: world.queue.now, kind: 'start', hashes: [...meta.hashes], ...(first ? { first } : {}), seed });
    const transfer = new P2pTransfer(
      {
        client,
        supernode: 'sim',
        pieces: {
          addActive: () => void this.active++,
          removeActive: () => void this.active--,
          markCommitted: () => {},
          announce: (_d, index) => {
            for (const link of this.children.get(blob.digest) ?? []) link.sendHave(index);
          },
        },
        kv: { put: async () => {}, del: async () => {} },
        logger: silent,
        dialer: {
          dial: (wireAddr) => {
            const parent = world.peer(wireAddr);
            if (!parent || parent === this) return undefined;
            trace?.decisions.push(`dial:${wireAddr}`);
            const observer: LinkObserver | undefined = trace && {
              delivered: (e) => trace.events.push({ t: world.queue.now, kind: 'link', parent: wireAddr, e }),
              requested: (index, offset) => trace.decisions.push(`${wireAddr}:${index}/${offset / BLOCK_BYTES}`),
            };
            const link = new SimLink(world, blob.digest, this.host, parent, observer);
            this.dialled.push(link);
            link.on('close', () => {
              const k = this.dialled.indexOf(link);
              if (k >= 0) this.dialled.splice(k, 1);
            });
            return link;
          },
        },
        peerId: this.peerId,
        onBytes: () => {},
        onBan: () => {},
        clock: this.clock,
        // A simulated peer's transfers start together: their ticks run from that start, as on a host of its own.
        tickPhaseMs: this.clock.now(),
        hashPiece: () => SIM_HASH,
        proofs: () => SIM_PROOF_CHECK,
        fetchUpstream: this.fetchUpstream,
        // The host's parent budget, shared by the transfers running (peer/p2p/p2p-downloader.ts).
        maxParents: () => parentsPerTransfer(this.active),
        seedLeases: () => seedLeasesPerTransfer(this.active),
        children: () => this.children.get(blob.digest)?.size ?? 0,
        random: mulberry32(seed),
      },
      {
        request,
        meta,
        ...(first ? { first } : {}),
        partial: { writeAt: async () => {}, setAvailable: () => {}, commit: async () => ({}) as never, fail: async () => {}, forgoDigest: () => {} },
        ingest: { readAt: async () => 0 },
        have: new Bitfield(blob.pieceCount),
      },
      { ...DEFAULT_TIMINGS, ...this.options.timings },
    );
    this.transfers.set(blob.digest, transfer);
    void transfer.done.then(() => {
      if (transfer.state.phase !== 'done') return;
      this.blobDoneMs.set(blob.digest, world.queue.now);
      if (this.blobDoneMs.size < world.blobs.length) return;
      this.doneMs = world.queue.now;
      world.onDone(this);
    });
    transfer.start();
  }

  /** Piece hashes the seed knows now (a piece's hash is known once it came from the registry). */
  private hashesNow(blob: SimBlob): Array<string | null> {
    const known = blob.seedPieces();
    return Array.from({ length: blob.pieceCount }, (_, i) => (i < known ? SIM_HASH : null));
  }

  /**
   * The report a batch or creation sent now carries, if any (SupernodeClient.reportIfDue with the
   * agent's period): the whole one it stands for and what goes, to a supernode of this version
   * (SYNC_FIELDS `reportChanges`: the fields that changed since the last one it took).
   */
  private reportDue(): { full: HeartbeatBody; bytes: number } | undefined {
    const now = this.world.queue.now;
    const report = this.reports.next(now, reportEveryMs(HEARTBEAT_MS, this.busyAsked, this.syncWaitMs), () => simReport(now), SYNC_FIELDS.includes('reportChanges'));
    return report && { full: report.full, bytes: reportJsonBytes(report.body) };
  }

  private rtt(): number {
    return 2 * this.world.latency(this.host, this.world.seedHost);
  }

  /**
   * The supernode API for one blob's transfer, answered by the real Tracker and Scheduler, its
   * requests and answers flows to and from the supernode's host (sim-api.ts).
   */
  private client(blob: SimBlob, trace: TransferTrace | undefined): TransferClient {
    const { world } = this;
    const oneWay = (): number => this.rtt() / 2;
    const ends: ApiEnds = { queue: world.queue, latencyMs: this.rtt() / 2, lines: world.apiLines, sharing: world.blobs.length, bytes: world.apiBytes, answered: (n) => world.supernode.pacer.answered(n) };
    return {
      // As the client asks (its answer options) and the route answers: the hashes from the first
      // one the peer lacks (`knownHashes`), trimmed and packed, the answer terse; read as the client reads it.
      // The batch carries the heartbeat's report when due, one request at a time (as SupernodeClient:
      // ReportTurn), and its item goes as to a supernode of this version (SYNC_FIELDS: its task by
      // short name, its haves packed); the supernode reads that item as the route does.
      sync: (_url, _digest, body) => {
        const report = this.reportDue();
        let taken = false;
        const item = syncItem(body, blob.digest, SYNC_ANSWER_OPTIONS, SYNC_FIELDS);
        return apiCall(ends, CHANNEL_OVERHEAD, jsonBytes(item) + (report?.bytes ?? 0), (): SyncAnswerJson => {
          const read = world.supernode.syncItem(this.peerId, item, report !== undefined);
          if (!read) throw new PollenError('ERR_NOT_FOUND', 'unknown peer or task');
          return asShaped(read.body, syncAnswer(this.hashesNow(blob), read.body, read.schedule));
        }, (answer) => jsonBytes({ answer })).then((answer) => {
          const res = withUnpackedHashes(readSyncAnswer(answer)!)!;
          taken = true;
          this.syncWaitMs = pacedMs(res);
          trace?.events.push({ t: world.queue.now, kind: 'sync', res });
          return res;
        }).finally(() => report && this.reports.settle(world.queue.now, taken, report.full));
      },
      // As the client asks (terse) and the route answers: the metainfo (every hash known now, or
      // none when asked without) and, when asked, the first sync's answer; read as the client reads
      // it. A creation is a frame of its own on the sync channel: its head is not shared with other blobs' as a batch's.
      createTask: (_url, body) => {
        const report = body.first !== undefined ? this.reportDue() : undefined;
        let taken = false;
        const ask = { ...TASK_ANSWER_OPTIONS, withoutHashes: body.withoutHashes };
        return apiCall({ ...ends, sharing: 1 }, CHANNEL_OVERHEAD, jsonBytes({ ...body, ...TASK_ANSWER_OPTIONS }) + (report?.bytes ?? 0), (): object => {
          const meta = { digest: blob.digest, size: blob.bytes, pieceSize: blob.pieceBytes, pieceCount: blob.pieceCount, hashes: this.hashesNow(blob) };
          if (!body.first) {
            world.supernode.registerAndJoin(this.peerId, this.wireAddr, this.options.uploadSlots, [blob.digest]);
            return taskAnswer(meta, undefined, ask);
          }
          const answer = world.supernode.createTask(this.peerId, blob.digest, body.first, report !== undefined);
          if (!answer) throw new PollenError('ERR_CLUSTER_UNAUTHORIZED', 'unknown peer: register again');
          const first = syncAnswer(meta.hashes, { knownHashes: blob.pieceCount }, answer);
          return report ? { ...taskAnswer(meta, first, ask), reported: true as const } : taskAnswer(meta, first, ask);
        }, jsonBytes).then((json): TaskAnswer => {
          const answer = readTaskAnswer(json)!;
          // It carried the heartbeat's report, as a sync does (SupernodeClient.createTask).
          taken = answer.reported === true;
          return answer;
        }).finally(() => report && this.reports.settle(world.queue.now, taken, report.full));
      },
      // One seed channel per supernode (peer/p2p/seed-channel.ts; over HTTP, one connection:
      // SEED_CONNECTIONS), whatever the blob: a request leaves once the body before it has come
      // (one piece on the wire at a time), and the seed answers it after the one-way latency.
      seedPiece: (_url, _digest, index, signal) =>
        new Promise<SeedPieceAnswer>((resolve, reject) => {
          trace?.decisions.push(`seed:${index}`);
          const length = Math.min(blob.pieceBytes, blob.bytes - index * blob.pieceBytes);
          let flow: ReturnType<SimNetwork['transfer']> | undefined;
          let sent!: () => void;
          const previous = this.seedLine;
          this.seedLine = new Promise<void>((r) => (sent = r));
          const onAbort = (): void => {
            if (flow) world.network.cancel(flow);
            // The line moves on once the body before this one has gone (at once if this one was sending).
            void previous.then(sent);
            reject(new PollenError('ERR_ABORTED', 'seed piece aborted'));
          };
          signal.addEventListener('abort', onAbort, { once: true });
          void previous.then(() => {
            if (signal.aborted) return;
            world.queue.after(oneWay(), () => {
              if (signal.aborted) return;
              // The seed sends a piece on as it comes from the registry: from its first byte, and
              // its last byte leaves no earlier than it arrived.
              blob.whenSeedHasStart(index, () => {
                if (signal.aborted) return;
                const done = (): void => {
                  if (signal.aborted) return;
                  signal.removeEventListener('abort', onAbort);
                  sent();
                  world.onSeedPiece(world.queue.now);
                  trace?.events.push({ t: world.queue.now, kind: 'seed', index });
                  // The seed has the whole piece once it has sent it: its hash comes with it (a trailer).
                  resolve({ body: Readable.from([world.body(length)]), pieceHash: () => SIM_HASH, pieceSignature: () => SIM_SIGNATURE });
                };
                flow = world.network.transfer(world.seedHost, this.host, length, () => blob.whenSeedHas(index, done));
              });
            });
          });
        }),
    };
  }

  /** The registry range GET of the fallback: one flow from the registry host, pieces handed over as it ends. */
  private readonly fetchUpstream: UpstreamFetch = (_upstream, _digest, range, signal, onPiece, pieceSize) =>
    new Promise<void>((resolve, reject) => {
      const { world } = this;
      const bytes = range.end - range.start + 1;
      const flow = world.network.transfer(world.registryHost, this.host, bytes, () => {
        signal.removeEventListener('abort', onAbort);
        void (async () => {
          for (let off = 0, k = 0; off < bytes; off += pieceSize, k++) await onPiece(k, world.body(Math.min(pieceSize, bytes - off)));
        })().then(resolve, reject);
      });
      const onAbort = (): void => {
        world.network.cancel(flow);
        reject(new PollenError('ERR_ABORTED', 'registry fetch aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });

  // The upload side: the uploader's slots (the first uploadSlots children that want pieces unchoked, the others wait in order).

  accept(link: SimLink): void {
    let children = this.children.get(link.digest);
    if (!children) this.children.set(link.digest, (children = new Set()));
    children.add(link);
    link.sendBitfield(this.pieces(this.world.blobs.find((b) => b.digest === link.digest)!));
    this.ends.set(link, new ParentEnd(link));
  }

  interest(link: SimLink, wants: boolean): void {
    const end = this.ends.get(link);
    if (end) this.slots[wants ? 'interested' : 'notInterested'](end);
  }

  proof(digest: Digest, index: number): PieceProof | undefined {
    return this.transfers.get(digest)?.proofs.get(index);
  }

  release(link: SimLink): void {
    this.children.get(link.digest)?.delete(link);
    const end = this.ends.get(link);
    this.ends.delete(link);
    end?.close();
    if (end) this.slots.release(end);
  }
}
