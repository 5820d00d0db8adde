// Deny by default: every route of the supernode's two listeners declares who may call it in its
// route options (`config: { auth }`), and one onRequest hook checks that on the route fastify
// matched, i.e. on the decoded, normalised path. A route (or a path matching no route) that
// declares nothing is refused: `/%61pi/v1/...`, `//api/v1`, case variants and the like either match
// a route, and get that route's check, or match none and are refused.
//   public   anyone who reaches the listener (health, stats, Harbor's /healthy: admin listener)
//   cluster  a cluster member: the connection completed the TLS-PSK handshake (registration)
//   peer     a registered peer, by its own token; its id is put on `request.peerId`; its calls count
//            against its allowance (peer-request-budget.ts) unless the route is `unmetered`
//   admin    the admin token (the preheat jobs API)
import { createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PollenError } from '../../src/errors.ts';

export type RouteAuth = 'public' | 'cluster' | 'peer' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call this route (see supernode/http/route-auth.ts); a route without it is refused. */
    auth?: RouteAuth;
    /** A `peer` route whose calls do not count against the peer's allowance (the seed's pieces). */
    unmetered?: boolean;
  }
  interface FastifyRequest {
    /** The peer a `peer` route's token names (set by the auth hook); undefined elsewhere. */
    peerId: string | undefined;
  }
}

export interface RouteAuthDeps {
  /** Whether the listener is TLS-PSK: then a completed connection proves cluster membership. */
  readonly tls: boolean;
  /** The peer id a token belongs to (constant-time check), or undefined. */
  readonly peerOf?: (token: string) => string | undefined;
  readonly adminToken?: string | undefined;
  /** A peer's allowance of calls: takes one, or gives the 429 refusal to answer with (routes marked `unmetered` skip it). */
  readonly admitPeer?: (peerId: string) => PollenError | undefined;
  /** A metered call of this peer was answered with `bytes` (peer-request-budget.ts: an answer costs by its bytes). */
  readonly chargePeer?: (peerId: string, bytes: number) => void;
}

/** The credential of `Authorization: Bearer TOKEN`, or undefined. */
export function bearerOf(request: FastifyRequest): string | undefined {
  return bearerFrom(request.headers.authorization);
}

/** The credential of an `Authorization` header's value `Bearer TOKEN`, or undefined. */
export function bearerFrom(authorization: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S{1,4096})$/i.exec(authorization ?? '');
  return m?.[1];
}

/** Equality of two secrets in time independent of where they differ (their sha256 are compared). */
export function sameSecret(given: string, want: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(want).digest();
  return timingSafeEqual(a, b);
}

export function installRouteAuth(app: FastifyInstance, deps: RouteAuthDeps): void {
  app.decorateRequest('peerId', undefined);
  app.addHook('onRequest', async (request) => {
    const auth = request.routeOptions.config.auth;
    switch (auth) {
      case 'public':
        return;
      case 'cluster':
        // Without TLS the listener is on loopback (see listen-policy.ts): reaching it is membership.
        if (deps.tls && (request.raw.socket as TLSSocket).encrypted !== true) throw denied();
        return;
      case 'peer': {
        const token = bearerOf(request);
        const peerId = token === undefined ? undefined : deps.peerOf?.(token);
        if (peerId === undefined) throw new PollenError('ERR_CLUSTER_UNAUTHORIZED', "this call needs the peer's own token (Authorization: Bearer TOKEN from POST /api/v1/peers); register again");
        const refused = request.routeOptions.config.unmetered === true ? undefined : deps.admitPeer?.(peerId);
        if (refused) throw refused;
        request.peerId = peerId;
        return;
      }
      case 'admin': {
        if (!deps.adminToken) throw new PollenError('ERR_ADMIN_UNAUTHORIZED', 'the jobs API is disabled: start the supernode with --admin-token (POLLEN_ADMIN_TOKEN)');
        const token = bearerOf(request);
        if (token === undefined || !sameSecret(token, deps.adminToken)) throw new PollenError('ERR_ADMIN_UNAUTHORIZED', 'the jobs API needs the admin token: Authorization: Bearer TOKEN');
        return;
      }
      default:
        throw denied();
    }
  });
  const charge = deps.chargePeer;
  if (charge) {
    app.addHook('onSend', async (request, _reply, payload) => {
      if (request.peerId !== undefined && request.routeOptions.config.unmetered !== true && typeof payload === 'string') charge(request.peerId, Buffer.byteLength(payload));
      return payload;
    });
  }
}

function denied(): PollenError {
  return new PollenError('ERR_CLUSTER_UNAUTHORIZED', 'no route here accepts this request');
}
