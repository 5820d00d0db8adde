// The HTTP forward-proxy face of the mirror, as pouchd's image-proxy uses it: absolute-URI requests
// for a registry's /v2/ API get exactly the mirror's treatment (cache, single flight, access gate),
// with the URL's origin as the upstream; any other absolute-URI request is relayed as is; CONNECT is
// tunnelled as is (TLS inside it cannot be cached).
import type { IncomingMessage, Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import { PollenError } from '../../src/errors.ts';

const PROXY_PASS_PATH = '/_pollen/proxy-pass';
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

export class ForwardProxy {
  private readonly targets = new WeakMap<IncomingMessage, URL>();
  private readonly logger: Logger;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly tunnels = new Set<Socket>();

  constructor(deps: { logger: Logger; dispatcher?: Dispatcher }) {
    this.logger = deps.logger;
    this.dispatcher = deps.dispatcher;
  }

  /** Fastify's rewriteUrl hook: absolute URIs become local paths, their target remembered. */
  rewriteUrl = (req: IncomingMessage): string => {
    const url = req.url ?? '/';
    if (!/^https?:\/\//i.test(url)) return url;
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return '/_pollen/invalid-proxy-target';
    }
    this.targets.set(req, target);
    return target.pathname.startsWith('/v2/') || target.pathname === '/v2' ? `${target.pathname === '/v2' ? '/v2/' : target.pathname}${target.search}` : PROXY_PASS_PATH;
  };

  originOf = (req: FastifyRequest): string | undefined => this.targets.get(req.raw)?.origin;

  register(app: FastifyInstance): void {
    app.all(PROXY_PASS_PATH, async (req, reply) => {
      const target = this.targets.get(req.raw);
      if (!target) throw new PollenError('ERR_NOT_FOUND', 'not a proxy request');
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
      const res = await request(target, {
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body: hasBody ? req.raw : undefined,
        dispatcher: this.dispatcher,
      }).catch((err: unknown) => {
        throw new PollenError('ERR_UPSTREAM_UNAVAILABLE', `proxy target ${target.origin} unreachable: ${(err as Error).message}`, { upstream: target.origin });
      });
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      void reply.code(res.statusCode).headers(out);
      return reply.send(res.body);
    });
    // Request bodies of proxied requests are streamed, not parsed.
    app.addContentTypeParser('*', (_req, _payload, done) => done(null));
  }

  /** CONNECT host:port tunnels. */
  attach(server: Server): void {
    server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      const m = /^\[?([^\]\s]+?)\]?:(\d{1,5})$/.exec(req.url ?? '');
      if (!m || Number(m[2]) > 65535) {
        client.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      const upstream = connect({ host: m[1]!, port: Number(m[2]) });
      this.tunnels.add(client).add(upstream);
      const cleanup = (): void => {
        client.destroy();
        upstream.destroy();
        this.tunnels.delete(client);
        this.tunnels.delete(upstream);
      };
      upstream.once('connect', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        void pipeline(client, upstream).catch(cleanup);
        void pipeline(upstream, client).catch(cleanup);
      });
      upstream.once('error', (err) => {
        this.logger.debug({ target: req.url, err: err.message }, 'CONNECT target unreachable');
        if (!client.destroyed && client.writable) client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
        cleanup();
      });
      client.once('error', cleanup);
      client.once('close', cleanup);
    });
  }

  close(): void {
    for (const s of this.tunnels) s.destroy();
    this.tunnels.clear();
  }
}
