// The HTTP forward-proxy face of the mirror, as pouchd's image-proxy uses it. It serves configured
// registries only (see upstreams.ts): an absolute-URI request for a registry's /v2/ API gets
// exactly the mirror route of that registry (cache, single flight, the same access gate); other
// paths of a configured registry (a token endpoint on the same host) are relayed to it; CONNECT to a
// configured registry is a blind tunnel to it (TLS inside cannot be cached). Any other target is
// refused with 403 before a connection is attempted: the proxy is no port-scan oracle and no way to
// the supernode, the peers' wires or the host's local services. Tunnels are bounded: MAX_TUNNELS
// at once (a client past that gets 503 before anything is dialled) and closed after
// TUNNEL_IDLE_MS without a byte either way, so no client can make the peer hold sockets without end.
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import { PollenError } from '../../src/errors.ts';
import { httpStatusOf, ociErrorBody } from '../../src/oci/error-body.ts';
import type { Upstream, Upstreams } from './upstreams.ts';

const PROXY_PASS_PATH = '/_pollen/proxy-pass';
const PROXY_REFUSED_PATH = '/_pollen/proxy-refused';
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

/** CONNECT tunnels open at once at most (each holds two sockets); more get 503. */
export const MAX_TUNNELS = 256;
/** A tunnel that carried no byte either way for this long is closed (a pull's registry connection idles far less). */
export const TUNNEL_IDLE_MS = 5 * 60_000;

/** What was decided for an absolute-URI request when its URL was rewritten. */
type ProxyDecision = { readonly upstream: Upstream; readonly pathname: string; readonly search: string } | { readonly refused: PollenError };

export class ForwardProxy {
  private readonly decisions = new WeakMap<IncomingMessage, ProxyDecision>();
  private readonly upstreams: Upstreams;
  private readonly logger: Logger;
  private readonly dispatcher: Dispatcher | undefined;
  /** Each open tunnel: its client socket and the socket to the registry. */
  private readonly tunnels = new Map<Socket, Socket>();
  private readonly maxTunnels: number;
  private readonly tunnelIdleMs: number;

  constructor(deps: { upstreams: Upstreams; logger: Logger; dispatcher?: Dispatcher }, options: { maxTunnels?: number; tunnelIdleMs?: number } = {}) {
    this.upstreams = deps.upstreams;
    this.logger = deps.logger;
    this.dispatcher = deps.dispatcher;
    this.maxTunnels = options.maxTunnels ?? MAX_TUNNELS;
    this.tunnelIdleMs = options.tunnelIdleMs ?? TUNNEL_IDLE_MS;
  }

  /** CONNECT tunnels open now. */
  get openTunnels(): number {
    return this.tunnels.size;
  }

  /** Fastify's rewriteUrl hook: absolute URIs become local paths, the decision about their target remembered. */
  rewriteUrl = (req: IncomingMessage): string => {
    const url = req.url ?? '/';
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url;
    const decision = this.decide(url);
    this.decisions.set(req, decision);
    if ('refused' in decision) return PROXY_REFUSED_PATH;
    const { pathname, search } = decision;
    if (pathname === '/v2') return `/v2/${search}`;
    return pathname.startsWith('/v2/') ? `${pathname}${search}` : PROXY_PASS_PATH;
  };

  /** The configured registry an absolute-URI request was for; undefined for an ordinary mirror request. */
  upstreamOf = (req: FastifyRequest): Upstream | undefined => {
    const d = this.decisions.get(req.raw);
    return d && 'upstream' in d ? d.upstream : undefined;
  };

  register(app: FastifyInstance): void {
    app.all(PROXY_REFUSED_PATH, async (req) => {
      const d = this.decisions.get(req.raw);
      throw d && 'refused' in d ? d.refused : new PollenError('ERR_NOT_FOUND', 'not a proxy request');
    });
    app.all(PROXY_PASS_PATH, async (req, reply) => {
      const d = this.decisions.get(req.raw);
      if (!d || !('upstream' in d)) throw new PollenError('ERR_NOT_FOUND', 'not a proxy request');
      const target = `${d.upstream.baseUrl}${d.pathname}${d.search}`;
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
      const res = await request(target, {
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body: hasBody ? req.raw : undefined,
        dispatcher: this.dispatcher,
      }).catch((err: unknown) => {
        throw new PollenError('ERR_UPSTREAM_UNAVAILABLE', `registry ${d.upstream.host} unreachable: ${(err as Error).message}`, { upstream: d.upstream.host });
      });
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      void reply.code(res.statusCode).headers(out);
      return reply.send(res.body);
    });
    // Request bodies of proxied requests are streamed, not parsed.
    app.addContentTypeParser('*', (_req, _payload, done) => done(null));
  }

  /** CONNECT host:port tunnels, to configured registries only. */
  attach(server: Server): void {
    server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      client.on('error', () => client.destroy());
      const authority = req.url ?? '';
      const target = this.upstreams.tunnelTarget(authority);
      if (!target) {
        // Only a plain host:port is repeated: anything else may hold userinfo.
        const shown = /^[A-Za-z0-9.:[\]-]{1,261}$/.test(authority) ? authority : '(malformed authority)';
        this.logger.debug({ target: shown }, 'CONNECT refused: not a configured registry');
        refuse(client, new PollenError('ERR_PROXY_TARGET_DENIED', `the proxy tunnels to configured registries only, and ${shown} is not one`));
        return;
      }
      if (this.tunnels.size >= this.maxTunnels) {
        this.logger.warn({ open: this.tunnels.size }, 'CONNECT refused: too many tunnels open');
        refuse(client, new PollenError('ERR_PROXY_BUSY', `the proxy has ${this.tunnels.size} tunnels open, its limit; try again when some close`));
        return;
      }
      const upstream = connect({ host: target.host, port: target.port });
      this.tunnels.set(client, upstream);
      const cleanup = (): void => {
        client.destroy();
        upstream.destroy();
        this.tunnels.delete(client);
      };
      // Any byte either way resets both: a socket's timeout counts its reads and its writes.
      client.setTimeout(this.tunnelIdleMs, cleanup);
      upstream.setTimeout(this.tunnelIdleMs, cleanup);
      upstream.once('connect', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        void pipeline(client, upstream).catch(cleanup);
        void pipeline(upstream, client).catch(cleanup);
      });
      upstream.once('error', (err) => {
        this.logger.debug({ target: authority, err: err.message }, 'CONNECT target unreachable');
        if (!client.destroyed && client.writable) client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        cleanup();
      });
      client.once('error', cleanup);
      client.once('close', cleanup);
    });
  }

  close(): void {
    for (const [client, upstream] of this.tunnels) {
      client.destroy();
      upstream.destroy();
    }
    this.tunnels.clear();
  }

  private decide(raw: string): ProxyDecision {
    let target: URL;
    try {
      target = new URL(raw);
    } catch {
      return { refused: new PollenError('ERR_INVALID_REQUEST', 'the proxy request names an invalid URL') };
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      return { refused: new PollenError('ERR_PROXY_TARGET_DENIED', `the proxy serves http(s) registries only, not ${target.protocol.slice(0, 20)}`) };
    }
    if (target.username || target.password) {
      // Never echoed or logged: it holds a password. Clients send credentials in Authorization.
      return { refused: new PollenError('ERR_INVALID_REQUEST', 'the proxy request URL carries user:password@; send credentials in an Authorization header') };
    }
    try {
      return { upstream: this.upstreams.resolve({ proxyHost: target.host }), pathname: target.pathname, search: target.search };
    } catch (err) {
      return { refused: err instanceof PollenError ? err : new PollenError('ERR_PROXY_TARGET_DENIED', 'the proxy target is not a configured registry') };
    }
  }
}

/** The error's status (403 for a target refused, 503 when busy) with its OCI body, then the socket closes: nothing was dialled. */
function refuse(client: Socket, err: PollenError): void {
  const body = JSON.stringify(ociErrorBody(err));
  const status = httpStatusOf(err);
  if (!client.destroyed && client.writable) {
    client.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
}
