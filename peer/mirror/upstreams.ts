// Which registry a request goes to: containerd's `?ns=HOST`, the target of a forward-proxy request,
// or the default upstream; and which static credentials (if any) stand in for a client that sends
// none. Mapping a host to a URL lets `ns=registry.example` reach a registry by another address.
import { PollenError } from '../../src/errors.ts';

export interface Upstream {
  /** The registry host as clients name it (the `ns` value, or the host of the URL). */
  readonly host: string;
  readonly baseUrl: string;
  /** `Basic …` from the configured static credentials, used when the client sends no Authorization. */
  readonly staticAuthorization: string | undefined;
}

export interface UpstreamOptions {
  readonly defaultUpstream: string | undefined;
  readonly registries: ReadonlyMap<string, string>;
  readonly credentials: ReadonlyMap<string, string>;
}

export class Upstreams {
  private readonly options: UpstreamOptions;
  private readonly defaultHost: string | undefined;

  constructor(options: UpstreamOptions) {
    this.options = options;
    this.defaultHost = options.defaultUpstream ? new URL(options.defaultUpstream).host : undefined;
  }

  /** Resolves the upstream for a request; `proxyOrigin` is the origin of an absolute-URI proxy request. */
  resolve(source: { ns?: string | undefined; proxyOrigin?: string | undefined }): Upstream {
    if (source.proxyOrigin) {
      const host = new URL(source.proxyOrigin).host;
      return this.make(host, this.options.registries.get(host) ?? source.proxyOrigin);
    }
    if (source.ns !== undefined) {
      if (!/^[A-Za-z0-9.-]+(?::\d{1,5})?$/.test(source.ns) || source.ns.length > 255) {
        throw new PollenError('ERR_INVALID_REQUEST', `invalid ns parameter ${JSON.stringify(source.ns.slice(0, 100))}`);
      }
      const mapped = this.options.registries.get(source.ns);
      if (mapped) return this.make(source.ns, mapped);
      if (source.ns === this.defaultHost && this.options.defaultUpstream) return this.make(source.ns, this.options.defaultUpstream);
      throw new PollenError('ERR_UNKNOWN_UPSTREAM', `no upstream is configured for registry ${source.ns}: add --registry ${source.ns}=URL`, { ns: source.ns });
    }
    if (this.options.defaultUpstream) return this.make(this.defaultHost!, this.options.defaultUpstream);
    throw new PollenError('ERR_UNKNOWN_UPSTREAM', 'the request names no registry and no default upstream is configured (--upstream URL)');
  }

  private make(host: string, baseUrl: string): Upstream {
    const creds = this.options.credentials.get(host);
    return {
      host,
      baseUrl: baseUrl.replace(/\/+$/, ''),
      staticAuthorization: creds ? `Basic ${Buffer.from(creds).toString('base64')}` : undefined,
    };
  }
}
