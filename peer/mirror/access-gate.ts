// The upstream check before anything cached goes to a client (see access-control.ts for the policy).
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { PollenError, toPollenError } from '../../src/errors.ts';
import { RegistryClient } from '../../src/oci/registry-client.ts';
import type { AccessCache } from './access-control.ts';
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
   * May this client read `target`? `path` is the object to probe with HEAD when no fresh decision is
   * cached; `haveLocal` allows serving on an earlier allowance while the upstream is unreachable.
   */
  async check(
    target: UpstreamTarget,
    path: string,
    opts: { clientMethod: 'GET' | 'HEAD'; accept?: string; haveLocal: boolean; notFoundCode: string; force?: boolean },
  ): Promise<GateResult> {
    if (!opts.force && this.cache.isFresh(target)) return { allowed: true };
    const key = `${target.authorization ?? ''}\n${target.baseUrl}\n${path}\n${opts.accept ?? ''}`;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.probe(target, path, opts.accept).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const probe = await pending;
    if (probe instanceof PollenError) {
      if (opts.haveLocal && this.cache.isWithinGrace(target)) {
        this.logger.warn({ upstream: target.baseUrl, name: target.name, err: probe.message }, 'upstream unreachable: serving cached content on an earlier allowance');
        return { allowed: true };
      }
      throw probe;
    }
    if (probe.statusCode === 200) {
      this.cache.allow(target);
      return { allowed: true, probe: probe.headers };
    }
    if (probe.statusCode === 401 || probe.statusCode === 403) this.cache.revoke(target);
    return { allowed: false, reply: await relayUpstream(probe, opts.clientMethod, 'HEAD', opts.notFoundCode) };
  }

  private async probe(target: UpstreamTarget, path: string, accept: string | undefined): Promise<UpstreamLike | PollenError> {
    const client = new RegistryClient({ dispatcher: this.dispatcher }, { baseUrl: target.baseUrl });
    const headers: Record<string, string> = {};
    if (target.authorization) headers.authorization = target.authorization;
    if (accept) headers.accept = accept;
    try {
      const res = await client.request('HEAD', path, { headers, scope: `repository:${target.name}:pull`, relayAuth: true });
      await res.body.dump();
      if (res.statusCode >= 500) {
        return new PollenError('ERR_UPSTREAM_UNAVAILABLE', `registry ${target.baseUrl} answered ${res.statusCode}`, { upstream: target.baseUrl, status: res.statusCode });
      }
      return { statusCode: res.statusCode, headers: res.headers };
    } catch (err) {
      return toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE');
    }
  }
}
