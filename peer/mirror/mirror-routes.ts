// The OCI distribution pull API of the mirror, on fastify. Paths are parsed here (nested names
// `a/b/c` need a wildcard), errors become OCI error bodies at this edge, and nothing a client sends
// can crash the daemon: every failure is a PollenError mapped to a status.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { parseDigest } from '../../src/digest.ts';
import { ABORTED, PollenError, toPollenError } from '../../src/errors.ts';
import { httpStatusOf, ociErrorBody } from '../../src/oci/error-body.ts';
import { isPooledBody, sendPooledBody } from '../../src/pooled-body.ts';
import { parseManifestRef, parseName } from '../../src/oci/names.ts';
import { RegistryClient } from '../../src/oci/registry-client.ts';
import type { BlobService } from './blob-service.ts';
import type { ManifestService } from './manifest-service.ts';
import { relayUpstream, type MirrorReply } from './mirror-reply.ts';
import type { Upstreams, Upstream } from './upstreams.ts';

const API_VERSION_HEADER = { 'docker-distribution-api-version': 'registry/2.0' };
const V2_PATH = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/;

export interface MirrorRouteDeps {
  readonly upstreams: Upstreams;
  readonly manifests: ManifestService;
  readonly blobs: BlobService;
  readonly dispatcher: Dispatcher | undefined;
  readonly logger: Logger;
  /** The configured registry a forward-proxy (absolute-URI) request was for, when it was one. */
  readonly proxyUpstreamOf: (req: FastifyRequest) => Upstream | undefined;
  /** Hears how a blob request was served (metrics and the access log). */
  readonly onBlobOutcome?: (req: FastifyRequest, outcome: 'hit' | 'miss' | 'join') => void;
}

export function registerMirrorRoutes(app: FastifyInstance, deps: MirrorRouteDeps): void {
  app.setErrorHandler((err, req, reply) => sendError(reply, req, deps.logger, err));
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, req, deps.logger, new PollenError('ERR_NOT_FOUND', `no route for ${req.method} ${req.url.slice(0, 200)}`)),
  );

  const upstreamOf = (req: FastifyRequest): Upstream => {
    const proxied = deps.proxyUpstreamOf(req);
    if (proxied) return proxied;
    const ns = (req.query as Record<string, unknown>).ns;
    return deps.upstreams.resolve({ ns: typeof ns === 'string' ? ns : undefined });
  };

  // The version check. Relayed from the upstream when there is one, so a registry's auth challenge
  // reaches clients (skopeo, dockerd) that learn the token realm from it; 200 when it cannot be asked.
  app.route({
    method: ['GET', 'HEAD'],
    url: '/v2/',
    handler: async (req, reply) => {
      let upstream: Upstream | undefined;
      try {
        upstream = upstreamOf(req);
      } catch {
        upstream = undefined;
      }
      if (upstream) {
        const client = new RegistryClient({ dispatcher: deps.dispatcher }, { baseUrl: upstream.baseUrl });
        const authorization = clientAuthorization(req) ?? upstream.staticAuthorization;
        const res = await client
          .request('GET', '/v2/', { headers: authorization ? { authorization } : {}, scope: '', relayAuth: true })
          .catch(() => undefined);
        if (res && (res.statusCode === 401 || res.statusCode === 403)) {
          return send(reply, await relayUpstream(res, req.method as 'GET' | 'HEAD', 'GET'));
        }
        await res?.body.dump();
      }
      void reply.code(200).headers({ ...API_VERSION_HEADER, 'content-type': 'application/json; charset=utf-8' });
      return req.method === 'HEAD' ? reply.send() : reply.send('{}');
    },
  });

  app.route({
    method: ['GET', 'HEAD'],
    url: '/v2/*',
    handler: async (req, reply) => {
      const path = req.url.split('?')[0]!;
      const m = V2_PATH.exec(decodePath(path));
      if (!m) throw new PollenError('ERR_NOT_FOUND', `not a registry pull path: ${path.slice(0, 200)}`);
      const [, rawName, kind, ref] = m as unknown as [string, string, 'manifests' | 'blobs', string];
      const name = parseName(rawName);
      const method = req.method as 'GET' | 'HEAD';
      const upstream = upstreamOf(req);
      const authorization = clientAuthorization(req);
      if (kind === 'manifests') {
        const accept = req.headers.accept;
        return send(reply, await deps.manifests.serve({ method, upstream, name, ref: parseManifestRef(ref), authorization, accept }));
      }
      const controller = new AbortController();
      reply.raw.once('close', () => controller.abort(ABORTED));
      return send(
        reply,
        await deps.blobs.serve({
          method, upstream, name, digest: parseDigest(ref), authorization, range: header(req, 'range'), signal: controller.signal,
          onOutcome: (outcome) => deps.onBlobOutcome?.(req, outcome),
        }),
      );
    },
  });

  // A mirror is read-only: pushes and deletes are refused as registries refuse them on a mirror.
  app.route({
    method: ['PUT', 'POST', 'PATCH', 'DELETE'],
    url: '/v2/*',
    handler: async (_req, reply) => {
      void reply.code(405).headers(API_VERSION_HEADER);
      return reply.send({ errors: [{ code: 'UNSUPPORTED', message: 'the Pollen mirror is read-only: push to the registry itself', detail: null }] });
    },
  });
}

function send(reply: FastifyReply, r: MirrorReply): FastifyReply {
  void reply.code(r.status).headers({ ...API_VERSION_HEADER, ...r.headers });
  if (isPooledBody(r.body)) {
    // Written with a callback per chunk (src/pooled-body.ts), not piped by fastify; the access log
    // and the metrics hear of the response from its 'close' as for any other.
    sendPooledBody(reply, r.body);
    return reply;
  }
  return r.body === undefined ? reply.send() : reply.send(r.body);
}

function sendError(reply: FastifyReply, req: FastifyRequest, logger: Logger, err: unknown): FastifyReply {
  // Fastify's own client errors (bad JSON, body too large, ...) carry a 4xx statusCode.
  const status = (err as { statusCode?: number }).statusCode;
  const e = err instanceof PollenError ? err : status && status >= 400 && status < 500 ? new PollenError('ERR_INVALID_REQUEST', (err as Error).message) : toPollenError(err);
  const httpStatus = err instanceof PollenError || !status ? httpStatusOf(e) : status;
  if (e.kind === 'internal') logger.error({ err, url: req.url.slice(0, 300) }, 'internal error');
  else logger.debug({ code: e.code, url: req.url.slice(0, 300), msg: e.message }, 'request failed');
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return reply;
  }
  void reply.code(httpStatus).headers({ ...API_VERSION_HEADER, 'content-type': 'application/json; charset=utf-8' });
  return reply.send(ociErrorBody(e));
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function clientAuthorization(req: FastifyRequest): string | undefined {
  return header(req, 'authorization');
}

function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    throw new PollenError('ERR_INVALID_REQUEST', 'malformed percent-encoding in path');
  }
}
