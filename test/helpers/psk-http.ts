// Raw HTTP/1.1 over the supernode's TLS-PSK cluster listener, with the request path sent exactly as
// given (no URL normalisation: `/%61pi/...`, `//api`, `/../` reach the server as written), for the
// attack tests. One request per connection.
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
