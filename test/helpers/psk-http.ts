// Raw HTTP/1.1 over the supernode's TLS-PSK cluster listener, with the request path sent exactly as
// given (no URL normalisation: `/%61pi/...`, `//api`, `/../` reach the server as written), for the
// attack tests. One request per connection.
import { connect as netConnect } from 'node:net';
import { connect } from 'node:tls';
import { pskClientOptions } from '../../src/cluster-tls.ts';

export interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export function pskRequest(port: number, secret: string, req: { method: string; path: string; headers?: Record<string, string>; body?: unknown }): Promise<RawAnswer> {
  const payload = req.body === undefined ? '' : typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
  const head = [
    `${req.method} ${req.path} HTTP/1.1`,
    'host: 127.0.0.1',
    'connection: close',
    ...(payload ? ['content-type: application/json', `content-length: ${Buffer.byteLength(payload)}`] : []),
    ...Object.entries(req.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = connect({ ...pskClientOptions(secret, 'api'), host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    // Not end(): over TLS that sends close_notify, and the server drops the request before answering.
    socket.once('secureConnect', () => socket.write(`${head}\r\n\r\n${payload}`));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('error', reject);
    socket.once('close', () => {
      try {
        resolve(parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reject(err as Error);
      }
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
  });
}

function parse(raw: string): RawAnswer {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no HTTP answer: ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = raw.slice(end + 4);
  if (headers['transfer-encoding'] === 'chunked') {
    let out = '';
    for (let rest = body; ; ) {
      const nl = rest.indexOf('\r\n');
      const size = parseInt(rest.slice(0, nl), 16);
      if (!size) break;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = out;
  }
  return { status, headers, body };
}

/** An opened sync channel (src/p2p/sync-channel-frames.ts), spoken byte for byte. */
export interface RawChannel {
  /** Writes raw bytes (a frame, a part of one, or anything else). */
  write(bytes: Buffer): void;
  /** Writes one frame of `json` (an object is serialised). */
  frame(json: unknown): void;
  /** The next answer frame, parsed; rejects once the channel closed without one. */
  next(): Promise<{ i: number; s: number; b: unknown }>;
  /** Resolves when the supernode closed the channel. */
  readonly closed: Promise<void>;
  destroy(): void;
}

/**
 * Asks for a sync channel with the request written as given (path, method, headers): the refusal
 * as a RawAnswer, or the channel once the supernode answered 101. Without a secret, over plain
 * TCP (a supernode on loopback without one).
 */
export function pskChannel(port: number, secret: string | undefined, req: { method?: string; path: string; headers: Record<string, string> }): Promise<RawAnswer | RawChannel> {
  const head = [`${req.method ?? 'POST'} ${req.path} HTTP/1.1`, 'host: 127.0.0.1', 'content-length: 0', ...Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`)].join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = secret === undefined ? netConnect({ host: '127.0.0.1', port }) : connect({ ...pskClientOptions(secret, 'api'), host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let opened = false;
    const answers: Array<{ i: number; s: number; b: unknown }> = [];
    const waiting: Array<{ resolve: (a: { i: number; s: number; b: unknown }) => void; reject: (e: Error) => void }> = [];
    let ended = false;
    let closedResolve!: () => void;
    const closed = new Promise<void>((r) => (closedResolve = r));
    const drain = (): void => {
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const n = buf.readUInt32BE(0);
        answers.push(JSON.parse(buf.toString('utf8', 4, 4 + n)) as { i: number; s: number; b: unknown });
        buf = buf.subarray(4 + n);
      }
      while (answers.length > 0 && waiting.length > 0) waiting.shift()!.resolve(answers.shift()!);
      if (ended) while (waiting.length > 0) waiting.shift()!.reject(new Error('channel closed'));
    };
    const channel: RawChannel = {
      write: (bytes) => socket.write(bytes),
      frame: (json) => {
        const text = typeof json === 'string' ? json : JSON.stringify(json);
        const h = Buffer.alloc(4);
        h.writeUInt32BE(Buffer.byteLength(text));
        socket.write(Buffer.concat([h, Buffer.from(text)]));
      },
      next: () =>
        new Promise((res, rej) => {
          waiting.push({ resolve: res, reject: rej });
          drain();
        }),
      closed,
      destroy: () => socket.destroy(),
    };
    socket.once(secret === undefined ? 'connect' : 'secureConnect', () => socket.write(`${head}\r\n\r\n`));
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (opened) return drain();
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (/^HTTP\/1\.1 101 /.test(buf.toString('latin1', 0, end))) {
        opened = true;
        socket.setTimeout(0);
        buf = buf.subarray(end + 4);
        resolve(channel);
        drain();
      }
    });
    socket.once('error', (err) => (opened ? undefined : reject(err)));
    socket.once('close', () => {
      ended = true;
      closedResolve();
      if (opened) return drain();
      try {
        resolve(parse(buf.toString('utf8')));
      } catch (err) {
        reject(err as Error);
      }
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
  });
}
