// The peer's end of its sync channel to each supernode (src/p2p/sync-channel-frames.ts): the batches
// of syncs SupernodeClient sends, and its task creations where the supernode takes them, go as
// frames on one kept connection (TLS with the cluster key, as every API call), opened with an HTTP
// upgrade that carries the peer's token. A call is answered with the status and body the HTTP
// route would give, so the client reads both the same way (a creation's answer may come after
// those of calls sent behind it: each is matched by its id). HTTP
// stays the reference path: a supernode that does not answer the upgrade with 101 is asked over
// HTTP for FALLBACK_MS, whatever it answered (one from before channels refuses the unknown path
// with 401, which must not read as "register again": the HTTP call that follows tells), and so is
// one that could not be reached that way or sent a malformed frame. A call not answered in time
// (a creation has the creation's longer timeout) fails and closes the channel, and with it the
// calls under way on it (the next call opens another), unless it is a creation and the channel
// answered another call since it was sent: the supernode is there, the creation waits on the
// registry's admission of the peer, and the syncs under way need not fail with it. An idle channel
// is closed after API_IDLE_MS, before the supernode's 72 s.
import net from 'node:net';
import tls from 'node:tls';
import { pskClientOptions } from '../../src/cluster-tls.ts';
import { PollenError } from '../../src/errors.ts';
import { encodeFrame, FrameReader, SYNC_CHANNEL_PATH, SYNC_CHANNEL_PROTOCOL, type AnswerFrame } from '../../src/p2p/sync-channel-frames.ts';

/** After an upgrade was refused (or failed to connect), HTTP is used for this long before the channel is tried again. */
export const FALLBACK_MS = 60_000;
/** How long a channel with no call in flight is kept (the peer's HTTP keep-alive: under the supernode's 72 s). */
const API_IDLE_MS = 60_000;
/** An answer to the upgrade request longer than this is no answer of a supernode. */
const MAX_HEAD_BYTES = 16 << 10;

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
  ) {
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const text of reader.push(chunk)) this.answer(JSON.parse(text) as AnswerFrame);
      } catch (err) {
        this.malformed = true;
        this.close(`supernode ${url} sent a malformed sync channel frame: ${(err as Error).message}`);
      }
    });
    socket.on('close', () => this.close(`supernode ${url} closed the sync channel`));
    socket.on('error', (err) => this.close(`supernode ${url} sync channel: ${err.message}`));
    socket.setTimeout(API_IDLE_MS, () => {
      if (this.pending.size === 0) this.close('idle');
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
  private readonly channels = new Map<string, Channel>();
  private readonly opening = new Map<string, Promise<Channel | undefined>>();
  /** Supernodes asked over HTTP until then (clock ms): they refused the upgrade, or it failed. */
  private readonly httpUntil = new Map<string, number>();
  /** Closed with its client: no channel is opened or kept from then. */
  private closed = false;

  constructor(private readonly options: { secret?: string | undefined; now?: () => number }) {}

  /**
   * The answer to a batch of syncs (`b`: `body` is the JSON of POST /api/v1/syncs) or a task's
   * creation (`t`: of POST /api/v1/tasks) over the channel to `url`, opened with `token` if need be;
   * undefined when that supernode is to be asked over HTTP.
   */
  async call(url: string, token: string, body: string, timeoutMs: number, kind: 'b' | 't' = 'b'): Promise<ChannelAnswer | undefined> {
    const now = this.options.now?.() ?? Date.now();
    if (this.closed || (this.httpUntil.get(url) ?? 0) > now) return undefined;
    let channel = this.channels.get(url);
    if (channel && channel.token !== token) {
      channel.close('registered again');
      channel = undefined;
    }
    if (!channel) {
      channel = await this.open(url, token, timeoutMs);
      // Opened for another call with an older token: this call goes over HTTP.
      if (!channel || channel.token !== token) return undefined;
    }
    return channel.call(body, timeoutMs, kind);
  }

  close(): void {
    this.closed = true;
    for (const c of this.channels.values()) c.close('client closed');
  }

  /** The channel to `url`, or undefined when it is to be asked over HTTP for now (FALLBACK_MS). */
  private open(url: string, token: string, timeoutMs: number): Promise<Channel | undefined> {
    const toHttp = (): undefined => {
      this.httpUntil.set(url, (this.options.now?.() ?? Date.now()) + FALLBACK_MS);
      return undefined;
    };
    let opening = this.opening.get(url);
    if (!opening) {
      // The HTTP call that follows a failed upgrade has its own timeout: the upgrade gets half.
      opening = this.connect(url, token, Math.max(1, Math.floor(timeoutMs / 2))).then(
        (res) => {
          if (!(res instanceof Channel)) return toHttp();
          // The client closed while this one was being opened: it goes too.
          if (this.closed) res.close('client closed');
          return res;
        },
        toHttp,
      );
      this.opening.set(url, opening);
      void opening.finally(() => this.opening.delete(url));
    }
    return opening;
  }

  /** Connects and sends the upgrade: the channel, or the status of the supernode's answer when it is not 101. */
  private connect(url: string, token: string, timeoutMs: number): Promise<Channel | ChannelAnswer> {
    const u = new URL(url);
    // The channel speaks TLS only with the cluster key, at the URL's root: anything else stays on HTTP.
    if ((u.protocol === 'https:' && !this.options.secret) || u.pathname.replace(/\/+$/, '') !== '') return Promise.resolve({ status: 0, body: undefined });
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(u.port || (this.options.secret || u.protocol === 'https:' ? 443 : 80));
    return new Promise((resolve, reject) => {
      const socket = this.options.secret ? tls.connect({ host, port, ...pskClientOptions(this.options.secret, 'api') }) : net.connect({ host, port });
      const fail = (why: string): void => {
        socket.destroy();
        reject(new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${url} sync channel: ${why}`, { supernode: url }));
      };
      socket.setTimeout(timeoutMs, () => fail(`no answer to the upgrade within ${timeoutMs} ms`));
      socket.once('error', (err) => fail(err.message));
      socket.once('close', () => fail('closed during the upgrade'));
      socket.once(this.options.secret ? 'secureConnect' : 'connect', () => {
        socket.setNoDelay(true);
        socket.write(`POST ${SYNC_CHANNEL_PATH} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: Upgrade\r\nUpgrade: ${SYNC_CHANNEL_PROTOCOL}\r\nAuthorization: Bearer ${token}\r\nContent-Length: 0\r\n\r\n`);
      });
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > MAX_HEAD_BYTES) fail('answer head too long');
          return;
        }
        const lines = head.toString('latin1', 0, end).split('\r\n');
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
        const rest = head.subarray(end + 4);
        if (status === 101) {
          socket.off('data', onData);
          socket.removeAllListeners('close').removeAllListeners('error').removeAllListeners('timeout');
          const channel = new Channel(token, socket, url, () => {
            if (this.channels.get(url) === channel) this.channels.delete(url);
            if (channel.malformed) this.httpUntil.set(url, (this.options.now?.() ?? Date.now()) + FALLBACK_MS);
          });
          this.channels.set(url, channel);
          resolve(channel);
          if (rest.length > 0) socket.emit('data', rest);
          return;
        }
        // Any other answer: this supernode is asked over HTTP for now (what it said is not read).
        socket.off('data', onData);
        socket.removeAllListeners('close').removeAllListeners('error').removeAllListeners('timeout');
        socket.on('error', () => {});
        socket.destroy();
        resolve({ status: Number.isInteger(status) ? status : 0, body: undefined });
      };
      socket.on('data', onData);
    });
  }
}
