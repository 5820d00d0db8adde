// What the mirror answers, independent of fastify: either content (from the store, a partial blob
// or upstream) or the upstream's own refusal relayed unchanged (401 with WWW-Authenticate, so the
// engine runs its own token flow; 403; 404).
import type { Readable } from 'node:stream';
import { readBodyCapped } from '../../src/oci/body.ts';
import type { PooledBody } from '../../src/pooled-body.ts';

export interface MirrorReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** Absent for HEAD. */
  readonly body?: Readable | Buffer | PooledBody | undefined;
}

/** Upstream headers passed to the client on relayed refusals. */
const RELAYED_HEADERS = ['www-authenticate', 'content-type', 'docker-distribution-api-version', 'docker-error-code'];
const MAX_RELAYED_BODY_BYTES = 64 * 1024;

const DEFAULT_BODIES: Record<number, [code: string, message: string]> = {
  401: ['UNAUTHORIZED', 'authentication required'],
  403: ['DENIED', 'requested access to the resource is denied'],
  404: ['NOT_FOUND', 'not found'],
  429: ['TOOMANYREQUESTS', 'too many requests'],
};

export interface UpstreamLike {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  /** Absent for an answer already read (a HEAD probe). */
  body?: AsyncIterable<Uint8Array> & { dump(): Promise<void>; destroy(): void };
}

/**
 * Relays an upstream refusal. For a HEAD upstream response (no body) answering a GET, an OCI error
 * body is made up so the client still learns the code; `notFoundCode` names what was missing.
 */
export async function relayUpstream(res: UpstreamLike, clientMethod: 'GET' | 'HEAD', upstreamMethod: 'GET' | 'HEAD', notFoundCode?: string): Promise<MirrorReply> {
  const headers: Record<string, string> = {};
  for (const h of RELAYED_HEADERS) {
    const v = res.headers[h];
    if (v !== undefined) headers[h] = Array.isArray(v) ? v.join(', ') : v;
  }
  if (clientMethod === 'HEAD') {
    await res.body?.dump();
    return { status: res.statusCode, headers };
  }
  let body: Buffer;
  if (upstreamMethod === 'GET' && res.body) {
    body = await readBodyCapped(res.body, MAX_RELAYED_BODY_BYTES, 'upstream error body').catch(() => Buffer.alloc(0));
  } else {
    await res.body?.dump();
    const [code, message] = res.statusCode === 404 && notFoundCode ? [notFoundCode, `${notFoundCode.toLowerCase().replace('_', ' ')}`] : (DEFAULT_BODIES[res.statusCode] ?? ['UNKNOWN', `upstream answered ${res.statusCode}`]);
    body = Buffer.from(JSON.stringify({ errors: [{ code, message, detail: null }] }));
    headers['content-type'] = 'application/json; charset=utf-8';
  }
  return { status: res.statusCode, headers, body };
}
