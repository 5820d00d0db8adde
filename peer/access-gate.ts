// The upstream check before anything cached goes to a client (see access-control.ts for the policy).
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { PollenError, toPollenError } from '../src/errors.ts';
import { RegistryClient } from '../src/oci/registry-client.ts';
import type { AccessCache } from './access-control.ts';
import type { UpstreamTarget } from './blob-downloader.ts';
import { relayUpstream, type MirrorReply } from './mirror-reply.ts';

export type GateResult =
  | { readonly allowed: true; /** The probe's headers, when a probe was made and answered 200. */ readonly probe?: Readonly<Record<string, string | string[] | undefined>> }
  | { readonly allowed: false; readonly reply: MirrorReply };

export class AccessGate {
  private readonly cache: AccessCache;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly logger: Logger;

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
    const probe = await this.probe(target, path, opts.accept);
    if (probe instanceof PollenError) {
      if (opts.haveLocal && this.cache.isWithinGrace(target)) {
        this.logger.warn({ upstream: target.baseUrl, name: target.name, err: probe.message }, 'upstream unreachable: serving cached content on an earlier allowance');
        return { allowed: true };
      }
      throw probe;
    }
    if (probe.statusCode === 200) {
      await probe.body.dump();
      this.cache.allow(target);
      return { allowed: true, probe: probe.headers };
    }
    if (probe.statusCode === 401 || probe.statusCode === 403) this.cache.revoke(target);
    return { allowed: false, reply: await relayUpstream(probe, opts.clientMethod, 'HEAD', opts.notFoundCode) };
  }

  private async probe(target: UpstreamTarget, path: string, accept: string | undefined) {
    const client = new RegistryClient({ dispatcher: this.dispatcher }, { baseUrl: target.baseUrl });
    const headers: Record<string, string> = {};
    if (target.authorization) headers.authorization = target.authorization;
    if (accept) headers.accept = accept;
    try {
      const res = await client.request('HEAD', path, { headers, scope: `repository:${target.name}:pull`, relayAuth: true });
      if (res.statusCode >= 500) {
        await res.body.dump();
        return new PollenError('ERR_UPSTREAM_UNAVAILABLE', `registry ${target.baseUrl} answered ${res.statusCode}`, { upstream: target.baseUrl, status: res.statusCode });
      }
      return res;
    } catch (err) {
      return toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE');
    }
  }
}
