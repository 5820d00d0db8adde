// The supernode's P2P API (see src/p2p/supernode-api.ts): peer registration and heartbeats, task
// creation (starts the seed), progress sync with scheduling, and seed pieces. Bodies are checked
// here; errors leave as {code, message} with a status derived from the error kind.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { isDigestLike, type Digest } from '../../src/digest.ts';
import { PollenError, toPollenError, type ErrorKind } from '../../src/errors.ts';
import { Bitfield } from '../../src/p2p/bitfield.ts';
import { API, type RegisterRequest, type SyncRequest, type SyncResponse, type TaskRequest, type MetainfoBody } from '../../src/p2p/supernode-api.ts';
import type { Scheduler } from './scheduler.ts';
import type { Seed, SeedTask } from './seed.ts';
import { parseTaskUpstream } from './seed-upstreams.ts';
import { HEARTBEAT_MS, type Tracker } from './tracker.ts';

const MAX_HOLDINGS = 5_000;

export interface P2pRouteDeps {
  readonly tracker: Tracker;
  readonly scheduler: Scheduler;
  readonly seed: Seed;
}

const STATUS: Record<ErrorKind, number> = {
  not_found: 404,
  invalid: 400,
  unavailable: 502,
  integrity: 502,
  unauthorized: 401,
  denied: 403,
  aborted: 503,
  too_large: 413,
  internal: 500,
};

export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const e = toPollenError(err);
  return reply.code(STATUS[e.kind]).send({ code: e.code, message: e.message });
}

function bad(what: string): never {
  throw new PollenError('ERR_INVALID_REQUEST', what);
}

function str(v: unknown, what: string, max = 4096): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) bad(`${what} must be a non-empty string`);
  return v as string;
}

function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`${what} must be a non-negative integer`);
  return v as number;
}

function digestOf(v: unknown): Digest {
  if (typeof v !== 'string' || !isDigestLike(v) || !v.startsWith('sha256:')) bad('digest must be sha256:<64 hex>');
  return v as Digest;
}

function metaBody(task: SeedTask): MetainfoBody {
  return { ...task.meta, hashes: [...task.meta.hashes] };
}

export function registerP2pRoutes(app: FastifyInstance, deps: P2pRouteDeps): void {
  const { tracker, scheduler, seed } = deps;

  app.post(API.register, async (request, reply) => {
    try {
      const body = (request.body ?? {}) as Partial<RegisterRequest>;
      const peerId = str(body.peerId, 'peerId', 128);
      const wireAddr = str(body.wireAddr, 'wireAddr', 300);
      const uploadSlots = int(body.uploadSlots, 'uploadSlots');
      const holdings = Array.isArray(body.holdings) ? body.holdings.slice(0, MAX_HOLDINGS) : [];
      const peer = tracker.register(peerId, wireAddr, uploadSlots);
      for (const h of holdings) {
        if (typeof h?.digest !== 'string' || !isDigestLike(h.digest) || typeof h.pieces !== 'string') continue;
        const task = seed.get(h.digest);
        if (!task || task.state.name === 'failed') {
          scheduler.rememberHolding(h.digest, peerId, h.pieces);
          continue;
        }
        scheduler.join(h.digest, task.meta.pieceCount, peer, Bitfield.fromBase64(task.meta.pieceCount, h.pieces));
      }
      request.log.info({ peerId, wireAddr, holdings: holdings.length }, 'peer registered');
      return { heartbeatMs: HEARTBEAT_MS };
    } catch (err) {
      return sendError(reply, err);
    }
  });

  app.post<{ Params: { peerId: string } }>('/api/v1/peers/:peerId/heartbeat', async (request, reply) => {
    if (!tracker.heartbeat(request.params.peerId)) return reply.code(404).send({ code: 'ERR_NOT_FOUND', message: 'unknown peer: register again' });
    return { ok: true };
  });

  app.post(API.task, async (request, reply) => {
    try {
      const body = (request.body ?? {}) as Partial<TaskRequest>;
      // peer identity: from the authenticated request once api lands
      const peer = tracker.get(str(body.peerId, 'peerId', 128));
      if (!peer) return reply.code(404).send({ code: 'ERR_NOT_FOUND', message: 'unknown peer: register first' });
      const req: TaskRequest = {
        peerId: peer.peerId,
        digest: digestOf(body.digest),
        sizeHint: body.sizeHint === undefined ? undefined : int(body.sizeHint, 'sizeHint'),
        upstream: parseTaskUpstream(body.upstream),
      };
      // Refused unless the registry admits the requester for this blob (seed.ts): nothing is joined or answered before.
      const task = await seed.openTask(req);
      scheduler.adoptPending(req.digest, task.meta.pieceCount, (id) => tracker.get(id));
      if (!scheduler.holds(req.digest, peer.peerId)) scheduler.join(req.digest, task.meta.pieceCount, peer);
      return metaBody(task);
    } catch (err) {
      return sendError(reply, err);
    }
  });

  app.post<{ Params: { digest: string } }>('/api/v1/tasks/:digest/sync', async (request, reply) => {
    try {
      const digest = digestOf(request.params.digest);
      const body = (request.body ?? {}) as Partial<SyncRequest>;
      // peer identity: from the authenticated request once api lands
      const peerId = str(body.peerId, 'peerId', 128);
      const peer = tracker.get(peerId);
      const task = seed.get(digest);
      if (!peer || !task || !scheduler.holds(digest, peerId) || !seed.isAdmitted(peerId, digest)) {
        return reply.code(404).send({ code: 'ERR_NOT_FOUND', message: 'unknown peer or task: create the task again' });
      }
      const have = Array.isArray(body.have) ? body.have.filter((i): i is number => Number.isInteger(i)).slice(0, task.meta.pieceCount) : [];
      scheduler.have(digest, peerId, have);
      for (const p of Array.isArray(body.badParents) ? body.badParents.slice(0, 64) : []) {
        const parent = typeof p === 'string' ? tracker.get(p) : undefined;
        if (parent) parent.failures++;
      }
      for (const p of Array.isArray(body.corruptParents) ? body.corruptParents.slice(0, 64) : []) {
        const parent = typeof p === 'string' ? tracker.get(p) : undefined;
        if (parent) {
          parent.failures++;
          parent.corruptions++;
        }
      }
      if (body.leave) {
        return { hashes: [], parents: [], seedGrants: [], availability: [] } satisfies SyncResponse;
      }
      if (task.state.name === 'failed') {
        return { hashes: [], parents: [], seedGrants: [], availability: [], failed: task.state.error.message } satisfies SyncResponse;
      }
      const wantSeed = typeof body.wantSeed === 'number' ? body.wantSeed : 0;
      const schedule = scheduler.schedule(digest, peerId, wantSeed, (id) => tracker.get(id), (i) => typeof task.meta.hashes[i] === 'string', body.starved === true);
      // Only the hashes the peer lacks: all of them on every sync was 17 KB per answer for a 256 MiB
      // blob, on the links the seed keeps full.
      const known = typeof body.knownHashes === 'number' && Number.isInteger(body.knownHashes) ? Math.min(Math.max(0, body.knownHashes), task.meta.pieceCount) : 0;
      return { hashes: task.meta.hashes.slice(known), hashesFrom: known, ...schedule } satisfies SyncResponse;
    } catch (err) {
      return sendError(reply, err);
    }
  });

  app.get<{ Params: { digest: string; index: string }; Querystring: { peer?: string } }>('/api/v1/seed/:digest/pieces/:index', async (request, reply) => {
    try {
      const digest = digestOf(request.params.digest);
      const index = Number(request.params.index);
      // peer identity: from the authenticated request once api lands
      const peerId = str(request.query.peer, 'peer', 128);
      const controller = new AbortController();
      request.raw.once('close', () => controller.abort());
      const { length, body } = await seed.readPiece(peerId, digest, index, controller.signal);
      body.on('error', () => {});
      return reply.header('content-length', length).type('application/octet-stream').send(body);
    } catch (err) {
      return sendError(reply, err);
    }
  });
}
