// The peer's end of its seed channel to each supernode (src/p2p/seed-channel-frames.ts): the seed
// pieces its transfers fetch (SupernodeClient.seedPiece), one on the wire at a time in the order
// asked (sendFirst), on one kept connection, opened, kept and given up for HTTP as the sync
// channel is (kept-channels.ts). A piece's answer is its status (a failure with the route's OCI
// body, read as the route's) or its bytes as they are read, with its hash and signature from the
// head or, once the bytes are in, from the end. A piece given up (its signal, or its reader
// stopping) is cancelled: the supernode skips it if not begun and cuts it short if it was, and
// what still comes of it is dropped. A piece's bytes not taken yet pause the socket past
// BODY_HIGH_WATER_BYTES (a paced reader, the host's download budget), so nothing piles up. The
// first piece in line waits for its head at most the timeout (those behind it wait their turn, as
// answers come in order); a head that does not come, a frame out of place, or bytes beyond the
// promised length close the channel, and with it the pieces under way on it (the next piece opens
// another). Fewer than MAX_SEED_QUEUED pieces wait on a channel: past that, over HTTP.
// The socket reads into the process's one read buffer (kept-channels.ts ChannelReads), and a
// piece's bytes are copied out of each read into blocks of the wire's pool (BLOCK_BYTES), handed
// on whole: one chunk per block for the reader, not one per read (a TLS record is 16 KiB), and no
// fresh buffer per read. The piece's reader gives the blocks back (releaseBlock) once stored.
import type net from 'node:net';
import { ABORTED, PollenError } from '../../src/errors.ts';
import { MAX_SEED_QUEUED, SEED_CHANNEL_PATH, SEED_CHANNEL_PROTOCOL, SeedAnswerReader, type SeedAnswerEnd, type SeedAnswerHead } from '../../src/p2p/seed-channel-frames.ts';
import { PIECE_HASH_HEADER, PIECE_HASH_LIST_HEADER } from '../../src/p2p/supernode-api.ts';
import { encodeFrame } from '../../src/p2p/sync-channel-frames.ts';
import { acquireBlock, releaseBlock } from '../../src/p2p/wire-blocks.ts';
import { type ChannelReads, KeptChannels, watchChannelSocket } from './kept-channels.ts';
import { seedPieceAnswer, type SeedPieceAnswer } from './supernode-answers.ts';

/** A piece's bytes read and not taken past which the socket is paused (and resumed below half). */
export const BODY_HIGH_WATER_BYTES = 1 << 20;

/** A piece's answer over the channel: its bytes (200), or the status and OCI body the route would give. */
export type SeedChannelAnswer = { readonly status: 200; readonly answer: SeedPieceAnswer } | { readonly status: number; readonly body: unknown };

/**
 * The channel's socket, paused while a piece still coming holds more than BODY_HIGH_WATER_BYTES
 * read and not taken, resumed once none does (a body lets go of its hold when it drains, ends,
 * fails or its reader stops).
 */
class ReadGate {
  private holds = 0;

  constructor(private readonly socket: net.Socket) {}

  hold(): void {
    if (this.holds++ === 0) this.socket.pause();
  }

  release(): void {
    if (--this.holds === 0) this.socket.resume();
  }
}

/** A piece's bytes as they come (blocks of the wire's pool, each the reader's to give back), read once. */
class PieceBody implements AsyncIterable<Buffer> {
  private chunks: Buffer[] = [];
  private queued = 0;
  private holding = false;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly gate: ReadGate,
    /** The reader stopped before the end (the piece is given up, if it is still coming). */
    private readonly onStop: () => void,
  ) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.queued += chunk.length;
    if (this.queued > BODY_HIGH_WATER_BYTES && !this.holding) {
      this.holding = true;
      this.gate.hold();
    }
    this.notify();
  }

  /** All its bytes came: its hold on the socket goes (they are in memory, and the next piece's bytes may come). */
  end(): void {
    this.ended = true;
    if (this.holding) this.letGo();
    this.notify();
  }

  fail(err: Error): void {
    this.failure ??= err;
    this.drop();
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    let done = false;
    try {
      for (;;) {
        if (this.failure) throw this.failure;
        const chunk = this.chunks.shift();
        if (chunk) {
          this.queued -= chunk.length;
          if (this.holding && this.queued <= BODY_HIGH_WATER_BYTES / 2) this.letGo();
          yield chunk;
          continue;
        }
        if (this.ended) {
          done = true;
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      if (!done && !this.failure) {
        // The reader stopped early: what it did not take goes, and so does its hold on the socket.
        this.drop();
        this.onStop();
      }
    }
  }

  /** What the reader will not take goes back to the pool. */
  private drop(): void {
    for (const chunk of this.chunks) releaseBlock(chunk);
    this.chunks = [];
    this.queued = 0;
    if (this.holding) this.letGo();
  }

  private letGo(): void {
    this.holding = false;
    this.gate.release();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

interface Call {
  readonly id: number;
  readonly index: number;
  /** The request frame, written once the calls before it are answered (`sent`). */
  readonly request: Buffer;
  sent: boolean;
  readonly resolve: (answer: SeedChannelAnswer) => void;
  readonly reject: (err: Error) => void;
  /** Stops listening to the caller's signal (once the call is settled). */
  readonly unlisten: () => void;
  /** Runs while the call is first in line waiting for its head, or given up waiting for its end. */
  timer?: NodeJS.Timeout | undefined;
  givenUp: boolean;
  /** Set once its head came with 200. */
  body?: PieceBody;
  length?: number;
  received: number;
  hash?: string | undefined;
  signature?: string | undefined;
  /** The blob's vouched list of piece hashes, when the head brought it. */
  list?: string | undefined;
  /** The block being filled with the piece's bytes, and how much of it is. */
  block?: Buffer | undefined;
  filled: number;
}

class SeedChannel {
  /** Calls in the order asked: the first is the one on the wire (sent, being answered), the others wait to be sent. */
  private readonly calls: Call[] = [];
  malformed = false;
  private nextId = 1;
  private closed = false;
  private readonly gate: ReadGate;

  constructor(
    readonly token: string,
    private readonly socket: net.Socket,
    private readonly url: string,
    private readonly onClose: () => void,
    /** How long the first call in line may wait for its head (or, given up, for its end). */
    private readonly timeoutMs: number,
    reads: ChannelReads,
  ) {
    this.gate = new ReadGate(socket);
    const reader = new SeedAnswerReader({ head: (h) => this.head(h), data: (b) => this.data(b), end: (e) => this.end(e) });
    watchChannelSocket(socket, reads, 'seed channel', url, {
      read: (chunk) => reader.push(chunk),
      malformed: () => (this.malformed = true),
      close: (why) => this.close(why),
      idle: () => this.calls.length === 0,
    });
  }

  /** Calls waiting reach MAX_SEED_QUEUED: more go over HTTP. */
  get full(): boolean {
    return this.calls.length >= MAX_SEED_QUEUED;
  }

  piece(digest: string, index: number, signal: AbortSignal): Promise<SeedChannelAnswer> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${this.url} unreachable: the seed channel closed`, { supernode: this.url }));
      if (signal.aborted) return reject(signal.reason as Error);
      const onAbort = (): void => this.giveUp(call, signal.reason as Error);
      const id = this.nextId++;
      const request = encodeFrame(`{"i":${id},"d":${JSON.stringify(digest)},"x":${index}}`);
      const call: Call = { id, index, request, sent: false, resolve, reject, unlisten: () => signal.removeEventListener('abort', onAbort), givenUp: false, received: 0, filled: 0 };
      signal.addEventListener('abort', onAbort, { once: true });
      this.calls.push(call);
      this.sendFirst();
    });
  }

  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    const err = new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${this.url} unreachable: ${why}`, { supernode: this.url });
    for (const call of this.calls.splice(0)) {
      this.settle(call);
      this.dropBlock(call);
      if (call.body) call.body.fail(err);
      else call.reject(err);
    }
    this.onClose();
  }

  /** The piece is no longer wanted: not asked if it was not yet; else the supernode is told, and what comes of it is dropped. */
  private giveUp(call: Call, reason: Error): void {
    const at = this.calls.indexOf(call);
    if (call.givenUp || this.closed || at < 0) return;
    call.givenUp = true;
    call.unlisten();
    this.dropBlock(call);
    if (call.body) call.body.fail(reason ?? ABORTED);
    else call.reject(reason ?? ABORTED);
    if (!call.sent) {
      this.calls.splice(at, 1);
      return;
    }
    this.socket.write(encodeFrame(`{"i":${call.id},"c":1}`));
    // Its end (or its head) must still come for the calls behind it: no longer than a head may take.
    if (call.body) this.arm(call);
  }

  /**
   * Writes the first call's request once the answer before it is over: one piece on the wire at a
   * time, as the HTTP path's one request at a time. With the next piece asked ahead, the seed wrote
   * it right behind the last and each peer's line held two pieces at the seed's uplink: a piece's
   * first copy reached the swarm later (bed, 256 MiB, N = 16, four pairs in both orders: 36.15 ->
   * 38.14 s mean). The request is timed: its head comes within timeoutMs.
   */
  private sendFirst(): void {
    const first = this.calls[0];
    if (!first || first.sent) return;
    first.sent = true;
    this.arm(first);
    this.socket.write(first.request);
  }

  private arm(call: Call): void {
    clearTimeout(call.timer);
    call.timer = setTimeout(() => this.close(`no answer to seed piece ${call.index} within ${this.timeoutMs} ms`), this.timeoutMs);
    call.timer.unref();
  }

  /** The block a call was filling goes back to the pool (the call failed or was given up). */
  private dropBlock(call: Call): void {
    if (call.block) releaseBlock(call.block);
    call.block = undefined;
    call.filled = 0;
  }

  /** The call's answer is over (or the channel went): its timer and its signal are let go. */
  private settle(call: Call): void {
    clearTimeout(call.timer);
    call.timer = undefined;
    call.unlisten();
  }

  /** The call being answered, which `id` must name. */
  private answering(id: number): Call {
    const call = this.calls[0];
    if (!call?.sent || call.id !== id) throw new Error(`an answer for ${id} out of order`);
    return call;
  }

  private head(h: SeedAnswerHead): void {
    const call = this.answering(h.i);
    if (call.body) throw new Error(`a second head for ${h.i}`);
    if (h.s !== 200) {
      this.calls.shift();
      this.settle(call);
      this.sendFirst();
      if (!call.givenUp) call.resolve({ status: h.s, body: h.b });
      return;
    }
    if (!Number.isSafeInteger(h.n) || (h.n as number) < 0) throw new Error('a piece head without its length');
    // From here the reader's stall watchdog (seed-piece.ts) watches the bytes; a given-up piece's
    // end is timed (giveUp).
    if (!call.givenUp) {
      clearTimeout(call.timer);
      call.timer = undefined;
    }
    call.length = h.n as number;
    call.hash = h.h;
    call.signature = h.g;
    call.list = h.l;
    call.body = new PieceBody(this.gate, () => this.giveUp(call, ABORTED));
    if (call.givenUp) call.body.fail(ABORTED);
    else call.resolve({ status: 200, answer: seedPieceAnswer(call.body, (name) => (name === PIECE_HASH_HEADER ? call.hash : name === PIECE_HASH_LIST_HEADER ? call.list : call.signature)) });
  }

  private data(bytes: Buffer): void {
    const call = this.calls[0];
    if (!call?.sent || !call.body) throw new Error('piece bytes without a head');
    call.received += bytes.length;
    if (call.received > call.length!) throw new Error(`piece bytes beyond the ${call.length} its head promised`);
    if (call.givenUp) return;
    // Copied out of the read (its buffer is the next read's): a block goes to the reader when full,
    // the last one once the piece's bytes are all in.
    const body = call.body;
    for (let at = 0; at < bytes.length; ) {
      const block = (call.block ??= acquireBlock());
      const n = bytes.copy(block, call.filled, at);
      at += n;
      call.filled += n;
      if (call.filled === block.length) this.handOn(call, body);
    }
    if (call.received === call.length && call.block) this.handOn(call, body);
  }

  private handOn(call: Call, body: PieceBody): void {
    body.push(call.block!.subarray(0, call.filled));
    call.block = undefined;
    call.filled = 0;
  }

  private end(e: SeedAnswerEnd): void {
    const call = this.answering(e.i);
    if (!call.body) throw new Error(`an end for ${e.i} before its head`);
    this.calls.shift();
    this.settle(call);
    this.sendFirst();
    if (call.givenUp) return;
    if (e.x !== undefined || call.received !== call.length) {
      // Cut short though not given up here (or short without saying so): the piece failed.
      this.dropBlock(call);
      call.body.fail(new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${this.url} cut seed piece ${call.index} short (${call.received} of ${call.length} bytes)`, { supernode: this.url }));
      return;
    }
    call.hash ??= e.h;
    call.signature ??= e.g;
    call.body.end();
  }
}

export class SeedChannels {
  private readonly kept: KeptChannels<SeedChannel>;
  private readonly timeoutMs: number;

  /** `timeoutMs`: how long the first piece in line may wait for its answer to begin. */
  constructor(options: { secret?: string | undefined; now?: () => number; timeoutMs: number }) {
    this.timeoutMs = options.timeoutMs;
    this.kept = new KeptChannels({ ...options, path: SEED_CHANNEL_PATH, protocol: SEED_CHANNEL_PROTOCOL, name: 'seed channel', transientReads: true, make: (token, socket, url, onClose, reads) => new SeedChannel(token, socket, url, onClose, this.timeoutMs, reads) });
  }

  /** Seed piece `index` of `digest` over the channel to `url`, opened with `token` if need be; undefined when that supernode is to be asked over HTTP. */
  async piece(url: string, token: string, digest: string, index: number, signal: AbortSignal): Promise<SeedChannelAnswer | undefined> {
    const channel = await this.kept.get(url, token, this.timeoutMs);
    return channel && !channel.full ? channel.piece(digest, index, signal) : undefined;
  }

  close(): void {
    this.kept.close();
  }
}
