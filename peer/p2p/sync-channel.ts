// The peer's end of its sync channel to each supernode (src/p2p/sync-channel-frames.ts): the batches
// of syncs SupernodeClient sends, and its task creations where the supernode takes them, go as
// frames on one kept connection (TLS with the cluster key, as every API call), opened with an HTTP
// upgrade that carries the peer's token (kept-channels.ts: opened, kept and given up for HTTP as
// the seed channel). A call is answered with the status and body the HTTP route would give, so the
// client reads both the same way (a creation's answer may come after those of calls sent behind
// it: each is matched by its id). A call not answered in time
// (a creation has the creation's longer timeout) fails and closes the channel, and with it the
// calls under way on it (the next call opens another), unless it is a creation and the channel
// answered another call since it was sent: the supernode is there, the creation waits on the
// registry's admission of the peer, and the syncs under way need not fail with it. An idle channel
// is closed after API_IDLE_MS, before the supernode's 72 s.
import type net from 'node:net';
import { PollenError } from '../../src/errors.ts';
import { encodeFrame, FrameReader, SYNC_CHANNEL_PATH, SYNC_CHANNEL_PROTOCOL, type AnswerFrame } from '../../src/p2p/sync-channel-frames.ts';
import { type ChannelReads, KeptChannels, watchChannelSocket } from './kept-channels.ts';

/** An answer over the channel: the status and the parsed JSON body the HTTP route would give. */
export interface ChannelAnswer {
  readonly status: number;
  readonly body: unknown;
}

interface Pending {
  resolve(answer: ChannelAnswer): void;
  reject(err: Error): void;
  readonly timer: NodeJS.Timeout;
}

class Channel {
  readonly pending = new Map<number, Pending>();
  /** The supernode sent something that is not an answer frame (its channel is not to be tried again soon). */
  malformed = false;
  private nextId = 1;
  private closed = false;
  /** Answers read on this channel: a creation that times out after one came fails alone. */
  private answers = 0;

  constructor(
    readonly token: string,
    private readonly socket: net.Socket,
    private readonly url: string,
    private readonly onClose: () => void,
    reads: ChannelReads,
  ) {
    const reader = new FrameReader();
    watchChannelSocket(socket, reads, 'sync channel', url, {
      read: (chunk) => {
        for (const text of reader.push(chunk)) this.answer(JSON.parse(text) as AnswerFrame);
      },
      malformed: () => (this.malformed = true),
      close: (why) => this.close(why),
      idle: () => this.pending.size === 0,
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  call(body: string, timeoutMs: number, kind: 'b' | 't'): Promise<ChannelAnswer> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${this.url} unreachable: the sync channel closed`, { supernode: this.url }));
      const id = this.nextId++;
      const answersBefore = this.answers;
      const timer = setTimeout(() => {
        if (kind !== 't' || this.answers === answersBefore) return this.close(`no answer within ${timeoutMs} ms`);
        this.pending.delete(id);
        reject(new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${this.url}: no answer to the task's creation within ${timeoutMs} ms`, { supernode: this.url }));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(encodeFrame(`{"i":${id},"${kind}":${body}}`));
    });
  }

  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    const err = new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${this.url} unreachable: ${why}`, { supernode: this.url });
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.onClose();
  }

  private answer(frame: AnswerFrame): void {
    if (frame === null || typeof frame !== 'object' || !Number.isInteger(frame.s)) throw new Error('not an answer');
    this.answers++;
    const p = this.pending.get(frame.i);
    if (!p) return; // its call gave up (a creation that timed out alone)
    this.pending.delete(frame.i);
    clearTimeout(p.timer);
    p.resolve({ status: frame.s, body: frame.b });
  }
}

export class SyncChannels {
  private readonly kept: KeptChannels<Channel>;

  constructor(options: { secret?: string | undefined; now?: () => number }) {
    this.kept = new KeptChannels({ ...options, path: SYNC_CHANNEL_PATH, protocol: SYNC_CHANNEL_PROTOCOL, name: 'sync channel', make: (token, socket, url, onClose, reads) => new Channel(token, socket, url, onClose, reads) });
  }

  /**
   * The answer to a batch of syncs (`b`: `body` is the JSON of POST /api/v1/syncs) or a task's
   * creation (`t`: of POST /api/v1/tasks) over the channel to `url`, opened with `token` if need be;
   * undefined when that supernode is to be asked over HTTP.
   */
  async call(url: string, token: string, body: string, timeoutMs: number, kind: 'b' | 't' = 'b'): Promise<ChannelAnswer | undefined> {
    const channel = await this.kept.get(url, token, timeoutMs);
    return channel?.call(body, timeoutMs, kind);
  }

  close(): void {
    this.kept.close();
  }
}
