// A client of the OCI distribution pull API for the parts of Pollen that pull on their own
// account (the snapshotter's `pollen pull`, the supernode's seed, preheat jobs): it answers Basic
// and Bearer challenges itself, caching tokens per scope. The peer mirror does not use this: it
// relays the engine's own auth flow instead (it calls `request` with `relayAuth`).
// Redirects (registries backed by object storage send blob GETs to another origin) are followed
// here, and the Authorization header never leaves the registry's origin: a redirect to another
// origin is followed without it. URLs in errors are redacted (no userinfo, no presigned query).
import type { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { sha256Digest, type Digest } from '../digest.ts';
import { PollenError, toPollenError } from '../errors.ts';
import { ACCEPT_ALL_MANIFESTS, MAX_MANIFEST_BYTES } from './media-types.ts';
import { readBodyCapped } from './body.ts';
import { parseChallenge, type Challenge } from './www-authenticate.ts';
import { redactUrl, splitUserinfo } from './redact-url.ts';

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Headers that carry credentials: sent to the registry's origin only. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

export type Credentials = { username: string; password: string } | { token: string };

export interface RegistryClientOptions {
  /** Base URL of the registry, e.g. `http://127.0.0.1:5000`. */
  readonly baseUrl: string;
  readonly credentials?: Credentials;
  /** Extra headers on every request (e.g. an Authorization given by a preheat job). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly userAgent?: string;
  /** Query parameters on every request, e.g. `{ ns: 'registry.example' }` for a mirror, as containerd sends. */
  readonly query?: Readonly<Record<string, string>>;
}

export interface FetchedManifest {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly bytes: Buffer;
}

export interface BlobResponse {
  /** 200 for the whole blob, 206 for a range. */
  readonly status: number;
  /** Total blob size when the registry said it. */
  readonly size: number | undefined;
  readonly contentLength: number | undefined;
  readonly body: Readable;
}

interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
}

export class RegistryClient {
  /** The base URL requests go to (userinfo, if it had any, moved into the credentials). */
  readonly baseUrl: string;
  /** The base URL as it may appear in logs and error messages. */
  readonly displayUrl: string;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly credentials: Credentials | undefined;
  private readonly headers: Record<string, string>;
  private readonly tokens = new Map<string, string>();
  private readonly query: string;

  constructor(deps: { dispatcher?: Dispatcher }, options: RegistryClientOptions) {
    this.dispatcher = deps.dispatcher;
    // `http://user:password@host` works as credentials, and never reaches a log or an error body.
    const { url, credentials } = splitUserinfo(options.baseUrl);
    this.baseUrl = url.replace(/\/+$/, '');
    this.displayUrl = redactUrl(this.baseUrl).replace(/\/+$/, '');
    this.credentials = options.credentials ?? credentials;
    this.headers = { 'user-agent': options.userAgent ?? 'pollen', ...options.headers };
    this.query = options.query && Object.keys(options.query).length ? `?${new URLSearchParams(options.query as Record<string, string>).toString()}` : '';
  }

  /** A request with the auth flow: on a 401 challenge, get a token (or use Basic) and retry once. */
  async request(
    method: 'GET' | 'HEAD',
    path: string,
    opts: { headers?: Record<string, string>; signal?: AbortSignal; scope: string; relayAuth?: boolean },
  ): Promise<UpstreamResponse> {
    const url = `${this.baseUrl}${path}${this.query}`;
    const send = async (target: string, headers: Record<string, string>): Promise<UpstreamResponse> => {
      try {
        // reset: false keeps the connection after a HEAD: undici closes it by default, in case a
        // server sends a body anyway; registries do not, and every manifest or blob HEAD (two per
        // layer an engine pulls) cost a new connection and, with TLS, a handshake.
        return await request(target, { method, headers, signal: opts.signal, dispatcher: this.dispatcher, maxRedirections: 0, reset: false } as Parameters<typeof request>[1]);
      } catch (err) {
        const e = toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE');
        if (e.code === 'ERR_UPSTREAM_UNAVAILABLE') {
          const where = target === url ? `registry ${this.displayUrl}` : `redirect target ${redactUrl(target)}`;
          throw new PollenError('ERR_UPSTREAM_UNAVAILABLE', `${where} unreachable: ${e.message}`, { upstream: this.displayUrl }, { cause: err });
        }
        throw e;
      }
    };
    const withAuth = (auth: string | undefined): Record<string, string> => {
      const headers: Record<string, string> = { ...this.headers, ...opts.headers };
      if (auth) headers.authorization = auth;
      else delete headers.authorization;
      return headers;
    };
    // relayAuth: the caller's own Authorization (or none) goes as is and a 401 comes back to it,
    // so an engine behind the mirror runs its own token flow.
    let headers = withAuth(opts.relayAuth ? opts.headers?.authorization : (this.tokens.get(opts.scope) ?? this.staticAuth()));
    let res = await send(url, headers);
    if (res.statusCode === 401 && !opts.relayAuth) {
      const challenge = parseChallenge(headerValue(res.headers['www-authenticate']));
      await res.body.dump();
      const auth = await this.authorize(challenge, opts.scope, opts.signal);
      if (auth) {
        headers = withAuth(auth);
        res = await send(url, headers);
      }
    }
    return this.followRedirects(res, url, headers, send);
  }

  /**
   * Follows up to MAX_REDIRECTS redirects. Credentials go only to the origin they were meant for:
   * the first hop to another origin drops them for the rest of the chain (as fetch does).
   */
  private async followRedirects(
    first: UpstreamResponse,
    url: string,
    headers: Record<string, string>,
    send: (target: string, headers: Record<string, string>) => Promise<UpstreamResponse>,
  ): Promise<UpstreamResponse> {
    let res = first;
    let current = url;
    let sent = headers;
    for (let hops = 0; REDIRECT_STATUSES.has(res.statusCode); hops++) {
      const location = headerValue(res.headers.location);
      await res.body.dump();
      if (hops >= MAX_REDIRECTS) throw new PollenError('ERR_UPSTREAM_PROTOCOL', `registry ${this.displayUrl} redirected more than ${MAX_REDIRECTS} times`, { upstream: this.displayUrl });
      if (!location) throw new PollenError('ERR_UPSTREAM_PROTOCOL', `redirect without location from ${redactUrl(current)}`, { upstream: this.displayUrl });
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new PollenError('ERR_UPSTREAM_PROTOCOL', `registry ${this.displayUrl} redirected to an invalid location`, { upstream: this.displayUrl });
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new PollenError('ERR_UPSTREAM_PROTOCOL', `registry ${this.displayUrl} redirected to a ${next.protocol} URL`, { upstream: this.displayUrl });
      }
      if (next.origin !== new URL(current).origin) sent = withoutCredentials(sent);
      if (next.username || next.password) {
        next.username = '';
        next.password = '';
      }
      current = next.toString();
      res = await send(current, sent);
    }
    return res;
  }

  async getManifest(name: string, reference: string, opts: { accept?: string; signal?: AbortSignal } = {}): Promise<FetchedManifest> {
    const res = await this.request('GET', `/v2/${name}/manifests/${reference}`, {
      headers: { accept: opts.accept ?? ACCEPT_ALL_MANIFESTS },
      signal: opts.signal,
      scope: `repository:${name}:pull`,
    });
    if (res.statusCode !== 200) await this.throwFor(res, 'manifest', `${name}:${reference}`);
    const bytes = await readBodyCapped(res.body, MAX_MANIFEST_BYTES, `manifest ${name}:${reference}`);
    const digest = sha256Digest(bytes);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new PollenError('ERR_DIGEST_MISMATCH', `manifest ${name}@${reference} hashed to ${digest}`, { expected: reference, actual: digest });
    }
    const mediaType = (headerValue(res.headers['content-type']) ?? '').split(';')[0]!.trim() || (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType || '';
    return { mediaType, digest, bytes };
  }

  /** The blob's size, or undefined when the registry does not have it. */
  async headBlob(name: string, digest: Digest, signal?: AbortSignal): Promise<number | undefined> {
    const res = await this.request('HEAD', `/v2/${name}/blobs/${digest}`, { signal, scope: `repository:${name}:pull` });
    await res.body.dump();
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) await this.throwFor(res, 'blob', digest);
    const len = headerValue(res.headers['content-length']);
    return len === undefined ? undefined : Number(len);
  }

  async getBlob(name: string, digest: Digest, opts: { range?: { start: number; end?: number }; signal?: AbortSignal } = {}): Promise<BlobResponse> {
    const headers: Record<string, string> = {};
    if (opts.range) headers.range = `bytes=${opts.range.start}-${opts.range.end ?? ''}`;
    const res = await this.request('GET', `/v2/${name}/blobs/${digest}`, { headers, signal: opts.signal, scope: `repository:${name}:pull` });
    if (res.statusCode !== 200 && res.statusCode !== 206) await this.throwFor(res, 'blob', digest);
    const contentLength = numberHeader(res.headers['content-length']);
    let size: number | undefined = res.statusCode === 200 ? contentLength : undefined;
    const cr = headerValue(res.headers['content-range']);
    const m = cr ? /\/(\d+)$/.exec(cr) : null;
    if (m) size = Number(m[1]);
    if (opts.range && res.statusCode === 200 && opts.range.start > 0) {
      await res.body.dump();
      throw new PollenError('ERR_UPSTREAM_PROTOCOL', `registry ${this.displayUrl} ignored a Range request for ${digest}`, { upstream: this.displayUrl });
    }
    return { status: res.statusCode, size, contentLength, body: res.body };
  }

  private staticAuth(): string | undefined {
    const c = this.credentials;
    if (c && 'username' in c) return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
    return undefined;
  }

  private async authorize(challenge: Challenge | undefined, scope: string, signal?: AbortSignal): Promise<string | undefined> {
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') return this.staticAuth();
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) return undefined;
    const c = this.credentials;
    if (c && 'token' in c) return `Bearer ${c.token}`;
    const realm = new URL(challenge.params.realm);
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    realm.searchParams.set('scope', challenge.params.scope ?? scope);
    const headers: Record<string, string> = { ...this.headers };
    const basic = this.staticAuth();
    if (basic) headers.authorization = basic;
    const res = await request(realm, { method: 'GET', headers, signal, dispatcher: this.dispatcher } as Parameters<typeof request>[1]).catch((err: unknown) => {
      throw new PollenError('ERR_UPSTREAM_UNAVAILABLE', `token service ${realm.origin} unreachable`, { upstream: realm.origin }, { cause: err });
    });
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump();
      throw new PollenError(c ? 'ERR_DENIED' : 'ERR_UNAUTHORIZED', `token service ${realm.origin} refused ${scope}`, { upstream: this.displayUrl, scope });
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new PollenError('ERR_UPSTREAM_UNAVAILABLE', `token service ${realm.origin} answered ${res.statusCode}`, { upstream: this.displayUrl });
    }
    const body = JSON.parse((await readBodyCapped(res.body, 1 << 20, 'token response')).toString('utf8')) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new PollenError('ERR_UPSTREAM_PROTOCOL', `token service ${realm.origin} returned no token`);
    const auth = `Bearer ${token}`;
    this.tokens.set(scope, auth);
    return auth;
  }

  private async throwFor(res: UpstreamResponse, what: 'manifest' | 'blob', id: string): Promise<never> {
    await res.body.dump();
    const s = res.statusCode;
    if (s === 401) throw new PollenError('ERR_UNAUTHORIZED', `registry ${this.displayUrl} requires authentication for ${what} ${id}`, { upstream: this.displayUrl });
    if (s === 403) throw new PollenError('ERR_DENIED', `registry ${this.displayUrl} denied access to ${what} ${id}`, { upstream: this.displayUrl });
    if (s === 404) {
      throw new PollenError(what === 'manifest' ? 'ERR_MANIFEST_UNKNOWN' : 'ERR_BLOB_UNKNOWN', `${what} ${id} not found at ${this.displayUrl}`, { upstream: this.displayUrl });
    }
    throw new PollenError('ERR_UPSTREAM_UNAVAILABLE', `registry ${this.displayUrl} answered ${s} for ${what} ${id}`, { upstream: this.displayUrl, status: s });
  }
}

function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (!CREDENTIAL_HEADERS.includes(k.toLowerCase())) out[k] = v;
  return out;
}

export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function numberHeader(v: string | string[] | undefined): number | undefined {
  const s = headerValue(v);
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
