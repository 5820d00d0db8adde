// The supernode's end of a peer's seed channel (src/p2p/seed-channel-frames.ts): the seed's pieces
// as GET /api/v1/seed/:digest/pieces/:index serves them (routes-p2p.ts: the same admission, bytes,
// hash and signature), answered in the order asked on one kept connection that the sync channel's
// upgrade opened (sync-channel.ts: the cluster's TLS and the peer's token). The token is checked
// again at every request, as every HTTP call checks it: a peer dropped since is answered 401 and
// the channel closes. A piece is written as the peer's socket takes it; a request the peer gave up
// is skipped if not begun and cut short at the next chunk if it was. Like the route, it does not
// count against the peer's allowance of calls, and a piece sent whole pays for one
// (peer-request-budget.ts). A request frame that is not JSON, has no id, is longer than
// MAX_SEED_REQUEST_BYTES, or is one more than MAX_SEED_QUEUED waiting closes the channel; so does
// a piece whose bytes fail part way (its length was promised).
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import secureJson from 'secure-json-parse';
import { parseDigest, type Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import { drained, writePooledChunks, type PooledBody } from '../../src/pooled-body.ts';
import { ANSWER_END, ANSWER_HEAD, dataFrameHead, GIVEN_UP_STATUS, jsonAnswerFrame, MAX_SEED_QUEUED, MAX_SEED_REQUEST_BYTES } from '../../src/p2p/seed-channel-frames.ts';
import { FrameReader } from '../../src/p2p/sync-channel-frames.ts';
import { classify, errorAnswer } from './error-handler.ts';

/** A piece's hash and the seed's signature of it (absent without a signer), as the route's headers carry them. */
export interface SeedPieceProof {
  readonly hash: string;
  readonly signature?: string;
}

/** A seed piece as the route serves it: its length, its bytes, and its proof once the seed has the whole piece. */
export interface SeedPieceReply {
  readonly length: number;
  readonly body: PooledBody;
  proof(): SeedPieceProof | undefined;
  /** The blob's vouched list of piece hashes once the seed holds it verified (PIECE_HASH_LIST_HEADER). */
  hashList(): string | undefined;
  /** Every byte was handed to the peer's socket: the seed counts the piece as served, and the lease it was sent on pays for one call of the peer's. */
  sentWhole(): void;
}

export interface SeedChannelDeps {
  readonly logger: Logger;
  /** The peer id a token belongs to, or undefined. */
  readonly peerOf: (token: string) => string | undefined;
  /** The seed piece route's work (routes-p2p.ts). */
  readonly seedPiece: (peerId: string, digest: Digest, index: number, signal: AbortSignal) => Promise<SeedPieceReply>;
}

interface Request {
  readonly id: number;
  readonly digest: unknown;
  readonly index: unknown;
}

/** The fields of a head or end frame that carry a proof. */
function proofFields(proof: SeedPieceProof | undefined): { h?: string; g?: string } {
  return proof ? { h: proof.hash, ...(proof.signature !== undefined ? { g: proof.signature } : {}) } : {};
}

/** Serves the channel on an upgraded `socket` (`head`: bytes read past the upgrade); closed when idle for `idleMs`. */
export function serveSeedChannel(socket: Duplex, token: string, peerId: string, deps: SeedChannelDeps, head: Buffer, idleMs: number): void {
  const reader = new FrameReader(MAX_SEED_REQUEST_BYTES);
  const queue: Request[] = [];
  /** Requests the peer gave up before their answer began (each one queued). */
  const givenUp = new Set<number>();
  /** The request being answered; aborted when the peer gives it up (a wait on the registry ends too). */
  let current: { id: number; controller: AbortController } | undefined;
  /** The highest request id read: a cancel of a later one is of nothing the peer asked for. */
  let lastId = -1;
  let running = false;
  /** Whether a failure was logged on this channel already (a failed blob's pieces fail alike: one line). */
  let logged = false;
  (socket as Socket).setNoDelay?.(true);
  // Idle: nothing asked and nothing being answered (a piece may wait on the registry that long),
  // or an answer the peer has not read for that long.
  (socket as Socket).setTimeout?.(idleMs, () => {
    if ((!current && queue.length === 0) || (socket as Socket).writableNeedDrain) socket.destroy();
  });
  // Only the piece being answered waits on anything (a signal of its own: one joined to a signal
  // of the channel's would be kept by it until the channel closed, on Node 20).
  socket.once('close', () => current?.controller.abort(new PollenError('ERR_ABORTED', 'seed channel closed')));

  const close = (why: string): void => {
    deps.logger.warn({ peerId, why }, 'seed channel closed');
    socket.destroy();
  };
  const sendHead = (id: number, status: number, fields: Record<string, unknown>): void => {
    socket.write(jsonAnswerFrame(ANSWER_HEAD, JSON.stringify({ i: id, s: status, ...fields })));
  };
  const refuse = (id: number, err: unknown): void => {
    const { error, status } = classify(err);
    const answer = errorAnswer(error, status);
    if (answer.status >= 500 && !logged) {
      logged = true;
      deps.logger.error({ err, peerId }, 'seed channel piece failed');
    }
    sendHead(id, answer.status, { b: answer.body });
  };
  const givenUpHead = (id: number): void => sendHead(id, GIVEN_UP_STATUS, { b: errorAnswer(new PollenError('ERR_ABORTED', 'given up')).body });

  const answer = async (req: Request): Promise<void> => {
    const controller = new AbortController();
    current = { id: req.id, controller };
    const givenUpNow = (): boolean => controller.signal.aborted;
    try {
      let piece: SeedPieceReply;
      try {
        if (typeof req.digest !== 'string' || !Number.isSafeInteger(req.index) || (req.index as number) < 0) {
          throw new PollenError('ERR_INVALID_REQUEST', 'a seed channel request names a digest (d) and a piece index (x)');
        }
        piece = await deps.seedPiece(peerId, parseDigest(req.digest), req.index as number, controller.signal);
      } catch (err) {
        if (socket.destroyed) return;
        if (givenUpNow()) givenUpHead(req.id);
        else refuse(req.id, err);
        return;
      }
      if (socket.destroyed) return;
      if (givenUpNow()) return givenUpHead(req.id);
      const early = piece.proof();
      const list = piece.hashList();
      const head = jsonAnswerFrame(ANSWER_HEAD, JSON.stringify({ i: req.id, s: 200, n: piece.length, ...proofFields(early), ...(list !== undefined ? { l: list } : {}) }));
      // A piece the seed holds whole (its proof known) is read from disk at once: its head goes in
      // the write of its first bytes, and its end in that of its last (one TLS record and one system
      // call here, one read at the peer, instead of three). A piece still coming from the registry
      // has its head sent now: the peer times the wait for it.
      let leading: Buffer | undefined = early && piece.length > 0 ? head : undefined;
      if (!leading) socket.write(head);
      let ended = false;
      const frame = (length: number): Uint8Array => {
        if (!leading) return dataFrameHead(length);
        const both = Buffer.concat([leading, dataFrameHead(length)]);
        leading = undefined;
        return both;
      };
      const after = (sentSoFar: number): Uint8Array | undefined => {
        if (!early || ended || sentSoFar !== piece.length) return undefined;
        ended = true;
        return jsonAnswerFrame(ANSWER_END, JSON.stringify({ i: req.id }));
      };
      let sent = 0;
      try {
        sent = await writePooledChunks(socket, piece.body, { frame, after, stop: givenUpNow });
      } catch (err) {
        if (socket.destroyed) return;
        // Fewer bytes than the head promised, and no way to say so in order but by closing: the
        // channel goes, unless the piece was given up (its wait on the registry cut): cut short.
        if (!givenUpNow()) return close(`piece ${String(req.index)} of ${String(req.digest)} failed part way: ${(err as Error).message}`);
      }
      if (socket.destroyed) return;
      if (leading) {
        // None of it went, nor its head: given up, it is answered as given up before it began;
        // otherwise (a body that ended at once) its head goes, and its end says it was cut short.
        if (givenUpNow()) return givenUpHead(req.id);
        socket.write(leading);
      }
      const whole = sent === piece.length;
      if (!ended) socket.write(jsonAnswerFrame(ANSWER_END, JSON.stringify(whole ? { i: req.id, ...(early ? {} : proofFields(piece.proof())) } : { i: req.id, x: 1 })));
      if (whole) piece.sentWhole();
    } finally {
      current = undefined;
    }
  };

  const run = async (): Promise<void> => {
    running = true;
    try {
      while (queue.length > 0 && !socket.destroyed) {
        const req = queue.shift()!;
        if (givenUp.delete(req.id)) {
          givenUpHead(req.id);
          continue;
        }
        if (deps.peerOf(token) !== peerId) {
          refuse(req.id, new PollenError('ERR_CLUSTER_UNAUTHORIZED', 'unknown peer: register again'));
          socket.end();
          return;
        }
        await answer(req);
        // A peer that does not read its answers: none is written until it does (its requests
        // wait, at most MAX_SEED_QUEUED of them).
        if ((socket as Socket).writableNeedDrain) await drained(socket);
      }
    } finally {
      running = false;
    }
  };

  const read = (chunk: Buffer): void => {
    let texts: string[];
    try {
      texts = reader.push(chunk);
    } catch (err) {
      return close((err as Error).message);
    }
    for (const text of texts) {
      let msg: { i?: unknown; d?: unknown; x?: unknown; c?: unknown };
      try {
        msg = secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }) as typeof msg;
      } catch {
        return close('a request frame is not JSON');
      }
      if (msg === null || typeof msg !== 'object' || !Number.isSafeInteger(msg.i) || (msg.i as number) < 0) return close('a request frame without an id');
      const id = msg.i as number;
      if (msg.c !== undefined) {
        // A cancel may cross the piece's answer (then there is nothing left to cancel); one of an
        // id never asked for is no peer's.
        if (id > lastId) return close('a cancel of a request never made');
        if (current?.id === id) current.controller.abort(new PollenError('ERR_ABORTED', 'given up'));
        else if (queue.some((q) => q.id === id)) givenUp.add(id);
        continue;
      }
      // The peer's client keeps fewer than this in flight, those it gave up included (seed-channel.ts).
      if (queue.length >= MAX_SEED_QUEUED) return close(`more than ${MAX_SEED_QUEUED} requests waiting`);
      lastId = Math.max(lastId, id);
      queue.push({ id, digest: msg.d, index: msg.x });
    }
    if (!running && queue.length > 0) void run().catch((err: unknown) => close(`answering failed: ${(err as Error).message}`));
  };
  socket.on('data', read);
  if (head.length > 0) read(head);
}
