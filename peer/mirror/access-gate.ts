// The upstream check before anything cached goes to a client (see access-control.ts for the policy):
// a HEAD on exactly the object the client asked for, in the repository it named, with its own
// credentials. Every path that serves a blob or a manifest passes here first, whatever the source
// of the bytes (store, a download in flight, P2P): no decision, no bytes, no download started.
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { PollenError, toPollenError } from '../../src/errors.ts';
import { ACCEPT_ALL_MANIFESTS } from '../../src/oci/media-types.ts';
import { RegistryClient } from '../../src/oci/registry-client.ts';
import { redactUrl } from '../../src/oci/redact-url.ts';
import type { AccessCache, AccessKey, AccessObject } from './access-control.ts';
import type { UpstreamTarget } from '../blob-downloader.ts';
import { relayUpstream, type MirrorReply, type UpstreamLike } from './mirror-reply.ts';

export type GateResult =
  | { readonly allowed: true; /** The probe's headers, when a probe was made and answered 200. */ readonly probe?: Readonly<Record<string, string | string[] | undefined>> }
  | { readonly allowed: false; readonly reply: MirrorReply };

export class AccessGate {
  private readonly cache: AccessCache;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly logger: Logger;
  /** Probes in flight: clients with the same credential asking at once share one HEAD. */
  private readonly inflight = new Map<string, Promise<UpstreamLike | PollenError>>();

  constructor(deps: { cache: AccessCache; dispatcher?: Dispatcher; logger: Logger }) {
    this.cache = deps.cache;
    this.dispatcher = deps.dispatcher;
    this.logger = deps.logger;
  }

  /**
   * May this client read `object` in `target`'s repository? Asks the upstream unless a fresh
   * decision for this exact (credential, registry, repository, object) is cached. `haveLocal`
   * allows serving on an earlier allowance of this same object while the upstream is unreachable.
   */
  async check(target: UpstreamTarget, object: AccessObject, opts: { clientMethod: 'GET' | 'HEAD'; haveLocal: boolean; force?: boolean }): Promise<GateResult> {
    const key = keyFor(target, object);
    if (!opts.force && this.cache.isFresh(key)) return { allowed: true };
    const path = objectPath(target.name, object);
    const flight = `${target.authorization ?? ''}\n${target.baseUrl}\n${path}`;
    let pending = this.inflight.get(flight);
    if (!pending) {
      pending = this.probe(target, path, object).finally(() => this.inflight.delete(flight));
      this.inflight.set(flight, pending);
    }
    const probe = await pending;
    if (probe instanceof PollenError) {
      if (opts.haveLocal && this.cache.isWithinGrace(key)) {
        this.logger.warn({ upstream: redactUrl(target.baseUrl), name: target.name, digest: object.digest, err: probe.message }, 'upstream unreachable: serving cached content on an earlier allowance');
        return { allowed: true };
      }
      throw probe;
    }
    if (probe.statusCode === 200) {
      this.cache.allow(key);
      return { allowed: true, probe: probe.headers };
    }
    this.cache.revoke(key);
    if (probe.statusCode < 400 || probe.statusCode >= 500) {
      // Not an answer about this object (a redirect loop, a 204...): nothing confirmed, nothing served.
      throw new PollenError('ERR_UPSTREAM_PROTOCOL', `registry answered ${probe.statusCode} to HEAD ${objectPath(target.name, object)}`, { status: probe.statusCode });
    }
    return { allowed: false, reply: await relayUpstream(probe, opts.clientMethod, 'HEAD', object.kind === 'blob' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN') };
  }

  /** The upstream just gave this client this object (a GET that answered 200): remember it. */
  recordAllowed(target: UpstreamTarget, object: AccessObject): void {
    this.cache.allow(keyFor(target, object));
  }

  /** The upstream refused this client this object. */
  recordRefused(target: UpstreamTarget, object: AccessObject): void {
    this.cache.revoke(keyFor(target, object));
  }

  /** Was this client allowed this object recently enough to be served it while the upstream is down? */
  wasAllowed(target: UpstreamTarget, object: AccessObject): boolean {
    return this.cache.isWithinGrace(keyFor(target, object));
  }

  private async probe(target: UpstreamTarget, path: string, object: AccessObject): Promise<UpstreamLike | PollenError> {
    const client = new RegistryClient({ dispatcher: this.dispatcher }, { baseUrl: target.baseUrl });
    const headers: Record<string, string> = {};
    if (target.authorization) headers.authorization = target.authorization;
    if (object.kind === 'manifest') headers.accept = ACCEPT_ALL_MANIFESTS;
    try {
      const res = await client.request('HEAD', path, { headers, scope: `repository:${target.name}:pull`, relayAuth: true });
      await res.body.dump();
      if (res.statusCode >= 500) {
        return new PollenError('ERR_UPSTREAM_UNAVAILABLE', `registry ${client.displayUrl} answered ${res.statusCode}`, { upstream: client.displayUrl, status: res.statusCode });
      }
      return { statusCode: res.statusCode, headers: res.headers };
    } catch (err) {
      return toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE');
    }
  }
}

function keyFor(target: UpstreamTarget, object: AccessObject): AccessKey {
  return { baseUrl: target.baseUrl, name: target.name, authorization: target.authorization, object };
}

export function objectPath(name: string, object: AccessObject): string {
  return `/v2/${name}/${object.kind === 'blob' ? 'blobs' : 'manifests'}/${object.digest}`;
}
