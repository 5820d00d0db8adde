// The supernode's end of a peer's sync channel (src/p2p/sync-channel-frames.ts): an HTTP request to
// SYNC_CHANNEL_PATH with `Upgrade: pollen-syncs/1` and the peer's token becomes a connection of
// frames, each a batch of syncs answered as POST /api/v1/syncs answers it (the route's own work,
// routes-p2p.ts), or a task's creation answered as POST /api/v1/tasks answers it, when it is done
// (it waits for the registry's admission of the peer: answers may come out of order, at most
// CREATIONS_PER_CHANNEL creations at a time). Each with the route's checks: the cluster's TLS and
// the peer's token at the upgrade, and for every frame the token again (a peer dropped since is
// refused, then the channel closes), the peer's allowance of calls, the route's body schema under
// the same options as fastify's, and JSON parsed as fastify parses it (prototype poisoning refused
// with 400). Errors are the route's
// OCI bodies with its statuses. A frame that is not JSON or has no id, or is longer than
// MAX_FRAME_BYTES, closes the channel; a peer that does not read its answers has its reads paused
// (no answers pile up), a channel idle for IDLE_MS is closed as an idle HTTP connection is, and a
// peer holds at most CHANNELS_PER_PEER (a newer one closes its oldest).
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import secureJson from 'secure-json-parse';
import { PollenError } from '../../src/errors.ts';
import type { SyncBatchRequest, SyncBatchResponse, TaskBody } from '../../src/p2p/supernode-api.ts';
import { SEED_CHANNEL_PATH, SEED_CHANNEL_PROTOCOL } from '../../src/p2p/seed-channel-frames.ts';
import { encodeFrame, FrameReader, SYNC_CHANNEL_PATH, SYNC_CHANNEL_PROTOCOL } from '../../src/p2p/sync-channel-frames.ts';
import { classify, errorAnswer } from './error-handler.ts';
import { serveSeedChannel, type SeedChannelDeps } from './seed-channel.ts';
import { bearerFrom } from './route-auth.ts';
import { SYNC_BATCH_BODY, TASK_BODY } from './schemas.ts';

/** A channel with no frame for this long is closed (fastify's keep-alive timeout for an idle HTTP connection). */
export const IDLE_MS = 72_000;
/** How long a refused upgrade's connection stays for its client to read the answer. */
const REFUSED_LINGER_MS = 2_000;
/** Channels one peer holds at once (it opens one; a reconnect may overlap the old one's close): a newer one closes the oldest. */
export const CHANNELS_PER_PEER = 2;
/**
 * Task creations one channel has under way at once (each waits for the registry): more are refused
 * with 429, so a peer's channel holds no more of the seed's admissions than this. An engine pulls
 * a few layers at a time (dockerd and containerd 3, skopeo 6) and preheat one blob at a time.
 */
export const CREATIONS_PER_CHANNEL = 64;

export interface SyncChannelDeps {
  readonly logger: Logger;
  /** Whether the listener is TLS-PSK: then only an encrypted connection may open a channel (route-auth.ts's `cluster`). */
  readonly tls: boolean;
  /** The peer id a token belongs to, or undefined. */
  readonly peerOf: (token: string) => string | undefined;
  /** A peer's allowance of calls: takes one, or gives the 429 refusal to answer with. */
  readonly admitPeer?: (peerId: string) => PollenError | undefined;
  /** This peer was answered `bytes` (peer-request-budget.ts: an answer costs by its bytes). */
  readonly chargePeer?: (peerId: string, bytes: number) => void;
  /** The batch route's work (routes-p2p.ts). */
  readonly syncBatch: (peerId: string, batch: SyncBatchRequest) => SyncBatchResponse;
  /** The task route's work (routes-p2p.ts); without it a creation frame is refused as a malformed batch. */
  readonly createTask?: (peerId: string, body: TaskBody) => Promise<unknown>;
  /** A channel opened (+1) or closed (-1): the metrics' gauge of open channels. */
  readonly channels?: (delta: 1 | -1) => void;
  /** The seed piece route's work (routes-p2p.ts): with it, a peer may open a seed channel too (seed-channel.ts). */
  readonly seedPiece?: SeedChannelDeps['seedPiece'];
  /** An answer of `status` and `bytes` of JSON was sent for a batch of `syncs` task syncs, `seconds` after its frame came. */
  readonly answered?: (status: number, bytes: number, syncs: number, seconds: number, creation: boolean) => void;
}

// Fastify's validator with the cluster app's options (apps.ts: no coercion): defaults filled in,
// properties the schema does not name removed, the first error reported.
const ajv = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: true, allErrors: false });
const validateBatch = ajv.compile(SYNC_BATCH_BODY);
const validateTask = ajv.compile(TASK_BODY);

/** The route's 400 for a body its schema refuses. */
function invalid(validate: { errors?: Array<{ instancePath?: string; message?: string }> | null | undefined }): PollenError {
  const e = validate.errors?.[0];
  return new PollenError('ERR_INVALID_REQUEST', `invalid request: body${e?.instancePath ?? ''} ${e?.message ?? 'is invalid'}`.slice(0, 300));
}

/**
 * Answers upgrades to a sync channel on `app`'s server; channels close when the app does. Any other
 * request that asks for an upgrade (`Upgrade: h2c`, say) is served by the app as a plain request,
 * as it was before the server had an upgrade listener, on a connection that closes after it.
 */
export function installSyncChannel(app: FastifyInstance, deps: SyncChannelDeps): void {
  const byPeer = new Map<string, Duplex[]>();
  let closing = false;
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (!isChannelRequest(req)) {
      // A body would come after the head on a socket no parser reads any more.
      const body = (req.headers['content-length'] ?? '0') !== '0' || req.headers['transfer-encoding'] !== undefined;
      if (body) return refuse(socket, { status: 400, error: new PollenError('ERR_INVALID_REQUEST', 'a request with a body cannot ask for an upgrade here') });
      return servePlain(app, req, socket as Socket);
    }
    const kind = channelKind(req, deps);
    const admitted = closing ? { status: 503, error: new PollenError('ERR_SUPERNODE_UNAVAILABLE', 'the supernode is shutting down') } : admit(req, socket, deps, kind);
    if ('error' in admitted) return refuse(socket, admitted);
    const { peerId, token } = admitted;
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${kind.protocol}\r\n\r\n`);
    // Each peer holds at most CHANNELS_PER_PEER of each kind.
    const key = `${kind.protocol} ${peerId}`;
    const held = byPeer.get(key) ?? [];
    byPeer.set(key, held);
    held.push(socket);
    deps.channels?.(1);
    if (held.length > CHANNELS_PER_PEER) held.shift()!.destroy();
    socket.once('close', () => {
      deps.channels?.(-1);
      const i = held.indexOf(socket);
      if (i >= 0) held.splice(i, 1);
      if (held.length === 0 && byPeer.get(key) === held) byPeer.delete(key);
    });
    if (kind.seed && deps.seedPiece) serveSeedChannel(socket, token, peerId, { logger: deps.logger, peerOf: deps.peerOf, seedPiece: deps.seedPiece }, head, IDLE_MS);
    else serve(socket, token, peerId, deps, head);
  });
  app.addHook('preClose', (done) => {
    closing = true;
    for (const held of byPeer.values()) for (const s of [...held]) s.destroy();
    done();
  });
}

/** An upgrade to a sync or seed channel (any other upgrade is a plain request to the app). */
function isChannelRequest(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade?.toLowerCase();
  return req.url === SYNC_CHANNEL_PATH || upgrade === SYNC_CHANNEL_PROTOCOL || req.url === SEED_CHANNEL_PATH || upgrade === SEED_CHANNEL_PROTOCOL;
}

/** Which channel an upgrade asks for, by its path (the seed's only where the app serves seed pieces). */
function channelKind(req: IncomingMessage, deps: SyncChannelDeps): { path: string; protocol: string; seed: boolean } {
  return req.url === SEED_CHANNEL_PATH && deps.seedPiece ? { path: SEED_CHANNEL_PATH, protocol: SEED_CHANNEL_PROTOCOL, seed: true } : { path: SYNC_CHANNEL_PATH, protocol: SYNC_CHANNEL_PROTOCOL, seed: false };
}

/** Hands a request that asked for some other upgrade to the app's routes, on a connection that closes after the answer. */
function servePlain(app: FastifyInstance, req: IncomingMessage, socket: Socket): void {
  socket.setTimeout(IDLE_MS, () => socket.destroy());
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.once('finish', () => {
    res.detachSocket(socket);
    socket.destroySoon();
  });
  app.routing(req, res);
}

/** The peer (and its token) an upgrade opens a channel for, or why it is refused (status and error). */
function admit(req: IncomingMessage, socket: Duplex, deps: SyncChannelDeps, kind: { path: string; protocol: string }): { peerId: string; token: string } | { status?: number; error: PollenError } {
  if (req.method !== 'POST' || req.url !== kind.path || req.headers.upgrade?.toLowerCase() !== kind.protocol) {
    return { error: new PollenError('ERR_NOT_FOUND', `no upgrade for ${req.method} ${String(req.url).slice(0, 200)} to ${String(req.headers.upgrade).slice(0, 64)}`) };
  }
  if (deps.tls && (socket as TLSSocket).encrypted !== true) return { error: new PollenError('ERR_CLUSTER_UNAUTHORIZED', 'a sync channel needs the cluster TLS') };
  const token = bearerFrom(req.headers.authorization);
  const peerId = token === undefined ? undefined : deps.peerOf(token);
  if (token === undefined || peerId === undefined) {
    return { error: new PollenError('ERR_CLUSTER_UNAUTHORIZED', "a sync channel needs the peer's own token (Authorization: Bearer TOKEN from POST /api/v1/peers); register again") };
  }
  return { peerId, token };
}

function refuse(socket: Duplex, why: { status?: number; error: PollenError }): void {
  const { status, body } = errorAnswer(why.error, why.status);
  const json = JSON.stringify(body);
  socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`);
  // An upgraded socket has no HTTP timeouts any more: one whose client never closes its end would stay.
  setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
}

function serve(socket: Duplex, token: string, peerId: string, deps: SyncChannelDeps, head: Buffer): void {
  const reader = new FrameReader();
  /** Frames read and not answered yet: answering stops while the peer does not read (see send). */
  const queued: string[] = [];
  let paused = false;
  let creating = 0;
  (socket as Socket).setNoDelay?.(true);
  (socket as Socket).setTimeout?.(IDLE_MS, () => socket.destroy());
  const send = (id: number, status: number, body: unknown, syncs: number, started: number, creation = false): void => {
    if (socket.destroyed || socket.writableEnded) return; // a creation answered after the channel went
    const json = `{"i":${id},"s":${status},"b":${JSON.stringify(body)}}`;
    deps.answered?.(status, json.length, syncs, (performance.now() - started) / 1000, creation);
    deps.chargePeer?.(peerId, json.length);
    // A peer that does not read its answers: answer and read no more of its frames until they drain.
    if (!socket.write(encodeFrame(json)) && !paused) {
      paused = true;
      socket.pause();
      socket.once('drain', () => {
        paused = false;
        socket.resume();
        answerQueued();
      });
    }
  };
  const failed = (id: number, err: unknown, started: number, creation = false): void => {
    const { error, status } = classify(err);
    const answer = errorAnswer(error, status);
    if (answer.status >= 500) deps.logger.error({ err, peerId }, 'sync channel call failed');
    send(id, answer.status, answer.body, 0, started, creation);
  };
  /** A creation frame: answered when the task route's work is done, frames after it meanwhile. */
  const create = (id: number, body: unknown, started: number): void => {
    if (!validateTask(body)) return failed(id, invalid(validateTask), started, true);
    if (creating >= CREATIONS_PER_CHANNEL) return failed(id, new PollenError('ERR_TOO_MANY_REQUESTS', `at most ${CREATIONS_PER_CHANNEL} task creations at a time on one sync channel`), started, true);
    creating++;
    const slots = (body as TaskBody).first ? 1 : 0;
    void deps.createTask!(peerId, body as TaskBody)
      .then(
        (answer) => send(id, 200, answer, slots, started, true),
        (err: unknown) => failed(id, err, started, true),
      )
      .finally(() => creating--);
  };
  const frame = (text: string): void => {
    const started = performance.now();
    let msg: { i?: unknown; b?: unknown; t?: unknown };
    let poisoned: Error | undefined;
    try {
      // As fastify parses a body: a __proto__ or constructor.prototype key refuses it (400).
      msg = secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }) as typeof msg;
    } catch (err) {
      poisoned = err as Error;
      try {
        msg = JSON.parse(text) as typeof msg; // only to answer the frame's id
      } catch {
        throw new PollenError('ERR_INVALID_REQUEST', 'sync channel frame is not JSON');
      }
    }
    if (msg === null || typeof msg !== 'object' || !Number.isSafeInteger(msg.i) || (msg.i as number) < 0) throw new PollenError('ERR_INVALID_REQUEST', 'sync channel frame without an id');
    const id = msg.i as number;
    // The token is checked at every frame, as every HTTP call checks it: a peer dropped since (or
    // registered again, with a new token) is refused, and its channel closes once that is sent.
    if (deps.peerOf(token) !== peerId) {
      const { status, body } = errorAnswer(new PollenError('ERR_CLUSTER_UNAUTHORIZED', 'unknown peer: register again'));
      send(id, status, body, 0, started);
      socket.end();
      return;
    }
    try {
      // Charged before the body is looked at, as the HTTP route's hook charges it.
      const refused = deps.admitPeer?.(peerId);
      if (refused) throw refused;
      if (poisoned) throw new PollenError('ERR_INVALID_REQUEST', poisoned.message.slice(0, 300));
      if (msg.t !== undefined && deps.createTask) return create(id, msg.t, started);
      if (!validateBatch(msg.b)) throw invalid(validateBatch);
      const batch = msg.b as SyncBatchRequest;
      send(id, 200, deps.syncBatch(peerId, batch), batch.syncs.length, started);
    } catch (err) {
      failed(id, err, started);
    }
  };
  const fail = (err: unknown): void => {
    deps.logger.warn({ peerId, err: (err as Error).message }, 'sync channel closed: malformed frame');
    socket.destroy();
  };
  const answerQueued = (): void => {
    try {
      while (queued.length > 0 && !paused && !socket.destroyed && !socket.writableEnded) frame(queued.shift()!);
    } catch (err) {
      fail(err);
    }
  };
  const read = (chunk: Buffer): void => {
    try {
      queued.push(...reader.push(chunk));
    } catch (err) {
      return fail(err);
    }
    answerQueued();
  };
  socket.on('data', read);
  if (head.length > 0) read(head);
}
