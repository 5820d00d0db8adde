// The supernode's P2P API (see src/p2p/supernode-api.ts) on the cluster listener: registration
// (cluster members) hands out the peer's token; heartbeats, tasks, syncs and seed pieces belong to
// the peer its token names. Bodies are checked by the schemas in ../http/schemas.ts before a
// handler runs; errors are thrown and leave through ../http/error-handler.ts.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Digest } from '../../src/digest.ts';
import type { PieceSigner } from '../../src/p2p/piece-proof.ts';
import { ABORTED, PollenError } from '../../src/errors.ts';
import { sendPooledBody } from '../../src/pooled-body.ts';
import { holdingBits, pieceHashList } from '../../src/p2p/metainfo.ts';
import { asShaped, syncAnswer, taskAnswer, type SyncAnswerJson } from '../../src/p2p/sync-answer.ts';
import {
  API,
  CHANNEL_CALLS,
  PIECE_HASH_HEADER,
  PIECE_HASH_LIST_HEADER,
  PIECE_LENGTH_HEADER,
  PIECE_SIGNATURE_HEADER,
  SYNC_FIELDS,
  type HeartbeatBody,
  type HeartbeatResponse,
  type Holding,
  type MetainfoBody,
  type RegisterResponse,
  type SyncBatchAnswer,
  type SyncBatchRequest,
  type SyncBatchResponse,
  type SyncRequest,
  type SyncResponse,
  type TaskAnswer,
  type TaskBody,
} from '../../src/p2p/supernode-api.ts';
import { classify, errorAnswer } from '../http/error-handler.ts';
import { bearerOf } from '../http/route-auth.ts';
import { DIGEST_PARAMS, HEARTBEAT_BODY, PIECE_PARAMS, REGISTER_BODY, SYNC_BATCH_BODY, SYNC_BODY, TASK_BODY } from '../http/schemas.ts';
import { checkWireHost, parseWireAddr } from '../http/wire-addr.ts';
import type { PeerRequestBudget } from '../http/peer-request-budget.ts';
import type { SeedPieceProof, SeedPieceReply } from '../http/seed-channel.ts';
import type { Scheduler } from './scheduler.ts';
import type { Seed, SeedTask } from './seed.ts';
import { ANSWER_OVERHEAD_BYTES, type SyncPacer } from './sync-pacer.ts';
import { scheduleSync, syncItemTask, takeSyncReports } from './task-sync.ts';
import { HEARTBEAT_MS, type PeerRecord, type Tracker } from './tracker.ts';

/** What the routes need of the seed (the unit tests give a stand-in). */
export type SeedPort = Pick<Seed, 'get' | 'openTask' | 'isAdmitted' | 'readPiece' | 'served'>;

export interface P2pRouteDeps {
  readonly tracker: Tracker;
  readonly scheduler: Scheduler;
  readonly seed: SeedPort;
  /** How long each answer asks the peer to wait before its next sync (absent: no pacing). */
  readonly pacer?: SyncPacer;
  /** Signs the hash of each seed piece served (absent: no piece proofs; peers take hashes only from syncs). */
  readonly signer?: PieceSigner;
  /** The peers' allowances of calls: a seed piece sent whole pays for one (peer-request-budget.ts). */
  readonly peerBudget?: Pick<PeerRequestBudget, 'credit'>;
}

interface RegisterBody {
  readonly peerId: string;
  readonly wireAddr: string;
  readonly uploadSlots: number;
  readonly holdings?: readonly Holding[];
}

/**
 * A task's metainfo as its creation answers it; once the seed holds the blob whole, verified
 * against its digest (state complete), with the list of its piece hashes vouched for (`hashList`).
 */
function metaBody(task: SeedTask): MetainfoBody & { hashList?: string } {
  const hashList = vouchedList(task);
  return { ...task.meta, hashes: [...task.meta.hashes], ...(hashList !== undefined ? { hashList } : {}) };
}

/** The list of piece hashes the supernode vouches for: once the seed holds the blob whole, verified against its digest. */
function vouchedList(task: SeedTask): string | undefined {
  if (task.state.name === 'complete') task.hashList ??= pieceHashList(task.meta);
  return task.hashList;
}

/**
 * What the routes share with the sync channel: a batch of syncs answered as POST /api/v1/syncs
 * answers it, and a task created as POST /api/v1/tasks creates it.
 */
export interface P2pRoutes {
  syncBatch(peerId: string | undefined, batch: SyncBatchRequest): SyncBatchResponse;
  createTask(peerId: string | undefined, body: TaskBody): Promise<TaskAnswer | Record<string, unknown>>;
  /** A seed piece as GET /api/v1/seed/:digest/pieces/:index serves it (the seed channel's work, supernode/http/seed-channel.ts). */
  seedPiece(peerId: string | undefined, digest: Digest, index: number, signal: AbortSignal): Promise<SeedPieceReply>;
}

export function registerP2pRoutes(app: FastifyInstance, deps: P2pRouteDeps): P2pRoutes {
  const { tracker, scheduler, seed, pacer, signer } = deps;

  /** The peer a token named (the auth hook, or the sync channel, took its id from it); one dropped since must register again. */
  const known = (peerId: string | undefined): PeerRecord => {
    const peer = peerId === undefined ? undefined : tracker.get(peerId);
    if (!peer) throw new PollenError('ERR_CLUSTER_UNAUTHORIZED', 'unknown peer: register again');
    return peer;
  };
  const caller = (request: FastifyRequest): PeerRecord => known(request.peerId);

  app.post<{ Body: RegisterBody }>(API.register, { config: { auth: 'cluster' }, schema: { body: REGISTER_BODY }, bodyLimit: 4 << 20 }, async (request): Promise<RegisterResponse> => {
    const body = request.body;
    const wire = parseWireAddr(body.wireAddr);
    await checkWireHost(wire, request.ip);
    const { peer, token } = tracker.register(body.peerId, body.wireAddr, body.uploadSlots, bearerOf(request));
    const holdings = body.holdings ?? [];
    for (const h of holdings) {
      const task = seed.get(h.digest);
      if (!task || task.state.name === 'failed') {
        scheduler.rememberHolding(h.digest, peer.peerId, h);
        continue;
      }
      scheduler.join(h.digest, task.meta.pieceCount, peer, holdingBits(task.meta, h));
    }
    request.log.info({ peerId: peer.peerId, wireAddr: body.wireAddr, holdings: holdings.length }, 'peer registered');
    return { peerId: peer.peerId, token, heartbeatMs: HEARTBEAT_MS, ...(signer ? { pieceKey: signer.publicKey } : {}), syncFields: SYNC_FIELDS, channelCalls: CHANNEL_CALLS };
  });

  app.post<{ Body: HeartbeatBody | undefined }>(API.heartbeat, { config: { auth: 'peer' }, schema: { body: HEARTBEAT_BODY }, bodyLimit: 4096 }, async (request): Promise<HeartbeatResponse> => {
    tracker.heartbeat(caller(request).peerId, request.body ?? undefined);
    return pacer?.heartbeatAnswer(HEARTBEAT_MS) ?? { ok: true };
  });

  /**
   * Tells the pacing what an answer that took `slots` of it carried (its JSON and the HTTP around
   * it): the answers share the uplink with the seed's pieces (sync-pacer.ts).
   */
  const countAnswer =
    <R extends FastifyRequest>(slots: (request: R) => number) =>
    async (request: R, reply: FastifyReply, payload: unknown): Promise<unknown> => {
      if (pacer && reply.statusCode === 200 && typeof payload === 'string') pacer.answered(payload.length + ANSWER_OVERHEAD_BYTES, slots(request));
      return payload;
    };

  // A task for the calling peer: refused unless the registry admits the requester for this blob
  // (seed.ts), with the credential this request carries; nothing is joined or answered before.
  const createTask = async (peerId: string | undefined, body: TaskBody): Promise<TaskAnswer | Record<string, unknown>> => {
    const peer = known(peerId);
    const { digest, sizeHint, upstream, first, report, pieceSize } = body;
    const task = await seed.openTask({ peerId: peer.peerId, digest, sizeHint, upstream, ...(pieceSize === undefined ? {} : { pieceSize }) });
    scheduler.adoptPending(digest, task.meta, (id) => tracker.get(id));
    // A task the seed began again in another layout (after an eviction) starts the scheduler's afresh.
    if (!scheduler.holds(digest, peer.peerId) || scheduler.pieceCountOf(digest) !== task.meta.pieceCount) scheduler.join(digest, task.meta.pieceCount, peer);
    const meta = metaBody(task);
    if (!first) return taskAnswer(meta, undefined, body);
    // The first sync's answer with the metainfo (which has every hash known): a slot of the pacing
    // like any sync, so a burst of creations is paced as a burst of syncs was. Like a sync batch,
    // it counts as the peer's heartbeat when it carries the report.
    const answer = taskAnswer(meta, syncOne(peer, digest, { have: [], wantSeed: first.wantSeed, badParents: [], knownHashes: task.meta.pieceCount }), body);
    return report !== undefined && tracker.heartbeat(peer.peerId, report) ? { ...answer, reported: true } : answer;
  };
  app.post<{ Body: TaskBody }>(API.task, { config: { auth: 'peer' }, schema: { body: TASK_BODY }, onSend: countAnswer((r: FastifyRequest<{ Body: TaskBody }>) => (r.body?.first ? 1 : 0)) }, async (request) =>
    createTask(request.peerId, request.body),
  );

  // A peer's store evicted the blob: it holds none of it now, so it is nobody's parent for it. Only
  // about itself (the id comes from its token) and only ever shrinking: nothing to admit or check.
  app.post<{ Params: { digest: Digest } }>('/api/v1/tasks/:digest/drop', { config: { auth: 'peer' }, schema: { params: DIGEST_PARAMS } }, async (request) => {
    scheduler.leave(request.params.digest, caller(request).peerId);
    return {};
  });

  /** One task's sync: the pieces the peer verified and its reports go in, parents and seed grants come out. */
  function syncOne(peer: PeerRecord, digest: Digest, body: SyncRequest): SyncResponse {
    const task = seed.get(digest);
    // Also when the scheduler's task is of another layout than the seed's (the seed began the blob
    // again): the peer's indexes may mean other bytes; it asks for the task again and learns.
    if (!task || !scheduler.holds(digest, peer.peerId) || scheduler.pieceCountOf(digest) !== task.meta.pieceCount || !seed.isAdmitted(peer.peerId, digest)) {
      throw new PollenError('ERR_NOT_FOUND', 'unknown task for this peer: create the task again');
    }
    takeSyncReports(deps, peer, digest, body);
    if (body.leave) return { hashes: [], parents: [], seedGrants: [], availability: [] };
    if (task.state.name === 'failed') return { hashes: [], parents: [], seedGrants: [], availability: [], failed: task.state.error.message };
    const answer = syncAnswer(task.meta.hashes, body, scheduleSync(deps, peer, digest, body, (i) => typeof task.meta.hashes[i] === 'string'));
    const hashList = body.wantHashList === true ? vouchedList(task) : undefined;
    return hashList === undefined ? answer : { ...answer, hashList };
  }

  app.post<{ Params: { digest: Digest }; Body: SyncRequest }>(
    '/api/v1/tasks/:digest/sync',
    { config: { auth: 'peer' }, schema: { params: DIGEST_PARAMS, body: SYNC_BODY }, onSend: countAnswer(() => 1) },
    async (request): Promise<SyncAnswerJson> => asShaped(request.body, syncOne(caller(request), request.params.digest, request.body)),
  );

  // The peer's transfers sync on the same ticks and send their syncs together: one request, one
  // token check and one TLS record each way instead of one per transfer. Each item is answered as
  // it would have been alone, its error included, so one unknown task does not fail the others.
  // A batch that carries the heartbeat's report is the peer's heartbeat too: a busy peer then sends
  // one request where it sent two (a fifth of the supernode's requests at 10,000 peers).
  // The same work answers the batches that come over a peer's sync channel (../http/sync-channel.ts).
  // A task is synced once a batch: a repeat (by digest or by name) is that item's 400, else one
  // request of 64 copies would be 64 scans, parent offers, pacing slots and answers.
  const syncBatch = (peerId: string | undefined, batch: SyncBatchRequest): SyncBatchResponse => {
    const peer = known(peerId);
    const reported = batch.report !== undefined && tracker.heartbeat(peer.peerId, batch.report);
    const syncs: SyncBatchAnswer[] = [];
    const synced = new Set<Digest>();
    for (const item of batch.syncs) {
      // Terse answers, and those to items named by `task` (which asks terse), name no digest.
      const digest = item.terse === true ? undefined : item.digest;
      try {
        const sync = syncItemTask(peer, item);
        if (synced.has(sync.digest)) throw new PollenError('ERR_INVALID_REQUEST', 'this batch syncs the task twice: one item a task', { digest: sync.digest });
        synced.add(sync.digest);
        const answer = asShaped(sync.body, syncOne(peer, sync.digest, sync.body));
        syncs.push(digest === undefined ? { answer } : { digest, answer });
      } catch (err) {
        const { error, status } = classify(err);
        const answer = errorAnswer(error, status);
        if (answer.status >= 500) app.log.error({ err, digest: item.digest, task: item.task }, 'sync failed');
        syncs.push(digest === undefined ? { status: answer.status, error: answer.body } : { digest, status: answer.status, error: answer.body });
      }
    }
    return reported ? { syncs, reported } : { syncs };
  };
  app.post<{ Body: SyncBatchRequest }>(API.syncs, { config: { auth: 'peer' }, schema: { body: SYNC_BATCH_BODY }, onSend: countAnswer((r: FastifyRequest<{ Body: SyncBatchRequest }>) => r.body?.syncs?.length ?? 0) }, async (request): Promise<SyncBatchResponse> =>
    syncBatch(request.peerId, request.body),
  );

  /** A seed piece: its length, its bytes, and its hash with the seed's signature once the seed has the whole piece. */
  const seedPiece = async (peerId: string | undefined, digest: Digest, index: number, signal: AbortSignal): Promise<SeedPieceReply> => {
    const peer = known(peerId);
    const { length, body, hash, layout } = await seed.readPiece(peer.peerId, digest, index, signal);
    const proof = (): SeedPieceProof | undefined => {
      const h = hash();
      return h === undefined ? undefined : { hash: h, ...(signer ? { signature: signer.sign(digest, index, h, layout) } : {}) };
    };
    // Sent whole on a lease of the peer's, the piece pays for the sync that reports it and leases
    // the next (peer-request-budget.ts): a fast seed line syncs once a piece. Once per lease: a
    // piece fetched again and again buys nothing.
    const sentWhole = (): void => {
      seed.served(length);
      if (deps.peerBudget && scheduler.creditSeedPiece(digest, peer.peerId, index)) deps.peerBudget.credit(peer.peerId, length);
    };
    const hashList = (): string | undefined => {
      const task = seed.get(digest);
      return task ? vouchedList(task) : undefined;
    };
    return { length, body, proof, hashList, sentWhole };
  };

  app.get<{ Params: { digest: Digest; index: string } }>(
    '/api/v1/seed/:digest/pieces/:index',
    // No HEAD (fastify would add one): a body nobody sends must not pay for a call (sentWhole).
    { config: { auth: 'peer', unmetered: true }, schema: { params: PIECE_PARAMS }, exposeHeadRoute: false },
    async (request, reply) => {
      const controller = new AbortController();
      request.raw.once('close', () => controller.abort(ABORTED));
      const { length, body, proof, hashList, sentWhole } = await seedPiece(request.peerId, request.params.digest, Number(request.params.index), controller.signal);
      void reply.type('application/octet-stream');
      // The piece's hash goes with it (PIECE_HASH_HEADER), and the seed's signature of it
      // (PIECE_SIGNATURE_HEADER: the peer hands both to its children, piece-proof.ts): in the head
      // when the seed has the whole piece, else as trailers of a chunked body, known by the time
      // its last bytes came.
      const headers = (p: SeedPieceProof): Record<string, string> => ({ [PIECE_HASH_HEADER]: p.hash, ...(p.signature !== undefined ? { [PIECE_SIGNATURE_HEADER]: p.signature } : {}) });
      const known = proof();
      const list = hashList();
      if (list !== undefined) void reply.header(PIECE_HASH_LIST_HEADER, list);
      if (known) void reply.header('content-length', length).headers(headers(known));
      else void reply.header(PIECE_LENGTH_HEADER, length).header('trailer', signer ? `${PIECE_HASH_HEADER}, ${PIECE_SIGNATURE_HEADER}` : PIECE_HASH_HEADER);
      // In pooled buffers written with callbacks (src/pooled-body.ts), not a fresh buffer per read.
      const trailers = (): Record<string, string> | undefined => {
        const p = proof();
        return p === undefined ? undefined : headers(p);
      };
      reply.raw.once('finish', sentWhole);
      sendPooledBody(reply, body, known ? {} : { trailers });
      return reply;
    },
  );
  return { syncBatch, createTask, seedPiece };
}
