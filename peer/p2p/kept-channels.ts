// A peer's kept connections to its supernodes that speak frames after an HTTP upgrade (the sync
// channel, sync-channel.ts; the seed channel, seed-channel.ts): one per supernode, TLS with the
// cluster key as every API call, opened with an upgrade request that carries the peer's token.
// HTTP stays the reference path: a supernode that does not answer the upgrade with 101 is asked
// over HTTP for FALLBACK_MS, whatever it answered (one from before a channel refuses the unknown
// path with 401, which must not read as "register again": the HTTP call that follows tells), and
// so is one that could not be reached that way or sent a malformed frame.
import net from 'node:net';
import tls from 'node:tls';
import { pskClientOptions } from '../../src/cluster-tls.ts';
import { PollenError } from '../../src/errors.ts';
import { READ_BUFFER } from '../../src/p2p/wire-blocks.ts';

/** After an upgrade was refused (or failed to connect), HTTP is used for this long before the channel is tried again. */
export const FALLBACK_MS = 60_000;
/** How long a channel with no call in flight is kept (the peer's HTTP keep-alive: under the supernode's 72 s). */
export const API_IDLE_MS = 60_000;
/** An answer to the upgrade request longer than this is no answer of a supernode. */
const MAX_HEAD_BYTES = 16 << 10;

/** Where a channel's reads go (KeptChannelsOptions.transientReads says how long a read is valid). */
export interface ChannelReads {
  /** Sends every read from now on to `handler`. */
  to(handler: (chunk: Buffer) => void): void;
}

/**
 * Wires a channel's socket: each read goes to `read` (a throw is a malformed frame: `malformed()`
 * is called and the channel closed), a close or an error closes it, and so does API_IDLE_MS without
 * traffic while `idle()` says nothing is under way.
 */
export function watchChannelSocket(socket: net.Socket, reads: ChannelReads, name: string, url: string, channel: { read(chunk: Buffer): void; malformed(): void; close(why: string): void; idle(): boolean }): void {
  reads.to((chunk: Buffer) => {
    try {
      channel.read(chunk);
    } catch (err) {
      channel.malformed();
      channel.close(`supernode ${url} sent a malformed ${name} frame: ${(err as Error).message}`);
    }
  });
  socket.on('close', () => channel.close(`supernode ${url} closed the ${name}`));
  socket.on('error', (err) => channel.close(`supernode ${url} ${name}: ${err.message}`));
  socket.setTimeout(API_IDLE_MS, () => {
    if (channel.idle()) channel.close('idle');
  });
}

/** What the set needs of one channel. */
export interface KeptChannel {
  readonly token: string;
  /** The supernode sent something that is not a frame of the channel (its channel is not to be tried again soon). */
  readonly malformed: boolean;
  close(why: string): void;
}

export interface KeptChannelsOptions<C extends KeptChannel> {
  readonly secret?: string | undefined;
  readonly now?: () => number;
  /** The upgrade request's path and protocol. */
  readonly path: string;
  readonly protocol: string;
  /** The channel's name in errors. */
  readonly name: string;
  /**
   * Its socket reads into the process's one read buffer (`onread`, READ_BUFFER, as the wire's
   * dialled sockets do): a read is a view valid only until its handler returns, so what the channel
   * keeps it copies. For a channel that moves bulk bytes (no fresh buffer per read).
   */
  readonly transientReads?: boolean;
  /** The channel on an upgraded socket, its reads given to `reads`; `onClose` must be called once it closes. */
  make(token: string, socket: net.Socket, url: string, onClose: () => void, reads: ChannelReads): C;
}

export class KeptChannels<C extends KeptChannel> {
  private readonly channels = new Map<string, C>();
  private readonly opening = new Map<string, Promise<C | undefined>>();
  /** Supernodes asked over HTTP until then (clock ms): they refused the upgrade, or it failed. */
  private readonly httpUntil = new Map<string, number>();
  /** Closed with its client: no channel is opened or kept from then. */
  private closed = false;

  constructor(private readonly options: KeptChannelsOptions<C>) {}

  /** The channel to `url` for `token`, opened if need be; undefined when that supernode is to be asked over HTTP. */
  async get(url: string, token: string, timeoutMs: number): Promise<C | undefined> {
    if (this.closed || (this.httpUntil.get(url) ?? 0) > this.now()) return undefined;
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
    return channel;
  }

  close(): void {
    this.closed = true;
    for (const c of this.channels.values()) c.close('client closed');
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  /** The channel to `url`, or undefined when it is to be asked over HTTP for now (FALLBACK_MS). */
  private open(url: string, token: string, timeoutMs: number): Promise<C | undefined> {
    const toHttp = (): undefined => {
      this.httpUntil.set(url, this.now() + FALLBACK_MS);
      return undefined;
    };
    let opening = this.opening.get(url);
    if (!opening) {
      // The HTTP call that follows a failed upgrade has its own timeout: the upgrade gets half.
      opening = this.connect(url, token, Math.max(1, Math.floor(timeoutMs / 2))).then((res) => {
        if (res === undefined) return toHttp();
        // The client closed while this one was being opened: it goes too.
        if (this.closed) res.close('client closed');
        return res;
      }, toHttp);
      this.opening.set(url, opening);
      void opening.finally(() => this.opening.delete(url));
    }
    return opening;
  }

  /** Connects and sends the upgrade: the channel, or undefined when the supernode's answer is not 101. */
  private connect(url: string, token: string, timeoutMs: number): Promise<C | undefined> {
    const { secret, path, protocol, name, transientReads = false } = this.options;
    const u = new URL(url);
    // The channel speaks TLS only with the cluster key, at the URL's root: anything else stays on HTTP.
    if ((u.protocol === 'https:' && !secret) || u.pathname.replace(/\/+$/, '') !== '') return Promise.resolve(undefined);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(u.port || (secret || u.protocol === 'https:' ? 443 : 80));
    return new Promise((resolve, reject) => {
      let deliver: (chunk: Buffer) => void = () => {};
      // A read into READ_BUFFER is handled before the next read of any socket of the process.
      const onread = transientReads
        ? {
            buffer: READ_BUFFER,
            callback: (bytes: number, buf: Uint8Array): boolean => {
              deliver(Buffer.from(buf.buffer, buf.byteOffset, bytes));
              return true;
            },
          }
        : undefined;
      const socket = secret ? tls.connect({ host, port, ...pskClientOptions(secret, 'api'), ...(onread ? { onread } : {}) }) : net.connect({ host, port, ...(onread ? { onread } : {}) });
      if (!onread) socket.on('data', (chunk: Buffer) => deliver(chunk));
      const reads: ChannelReads = { to: (handler) => (deliver = handler) };
      const fail = (why: string): void => {
        socket.destroy();
        reject(new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${url} ${name}: ${why}`, { supernode: url }));
      };
      socket.setTimeout(timeoutMs, () => fail(`no answer to the upgrade within ${timeoutMs} ms`));
      socket.once('error', (err) => fail(err.message));
      socket.once('close', () => fail('closed during the upgrade'));
      socket.once(secret ? 'secureConnect' : 'connect', () => {
        socket.setNoDelay(true);
        socket.write(`POST ${path} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\nAuthorization: Bearer ${token}\r\nContent-Length: 0\r\n\r\n`);
      });
      let head = Buffer.alloc(0);
      // The answer's head, copied out of each read (Buffer.concat): reads may be transient.
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > MAX_HEAD_BYTES) fail('answer head too long');
          return;
        }
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1', 0, end).split('\r\n')[0] ?? '')?.[1]);
        const rest = head.subarray(end + 4);
        deliver = () => {};
        socket.removeAllListeners('close').removeAllListeners('error').removeAllListeners('timeout');
        if (status === 101) {
          const channel = this.options.make(
            token,
            socket,
            url,
            () => {
              if (this.channels.get(url) === channel) this.channels.delete(url);
              if (channel.malformed) this.httpUntil.set(url, this.now() + FALLBACK_MS);
            },
            reads,
          );
          this.channels.set(url, channel);
          resolve(channel);
          if (rest.length > 0) deliver(rest);
          return;
        }
        // Any other answer: this supernode is asked over HTTP for now (what it said is not read).
        socket.on('error', () => {});
        socket.destroy();
        resolve(undefined);
      };
      deliver = onData;
    });
  }
}
