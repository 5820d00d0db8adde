// Which registry a request goes to: containerd's `?ns=HOST`, the target of a forward-proxy request,
// or the default upstream; and which static credentials (if any) stand in for a client that sends
// none. Mapping a host to a URL lets `ns=registry.example` reach a registry by another address.
// Only configured registries are ever reached: the `--registry HOST=URL` mappings (by HOST, or by
// the URL's own host) and `--upstream`. Anything else is refused before any connection is made, so
// the mirror and its proxy face are no way into the cluster or the host's local services.
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

/** Where a CONNECT tunnel to a configured registry goes. */
export interface TunnelTarget {
  readonly host: string;
  readonly port: number;
}

const HOST_PORT = /^[A-Za-z0-9.-]+(?::\d{1,5})?$/;

export class Upstreams {
  private readonly options: UpstreamOptions;
  private readonly defaultHost: string | undefined;
  /** Every configured URL by its own `host[:port]` (as URL.host spells it). */
  private readonly byUrlHost = new Map<string, string>();
  /** Every configured URL by `host:port`, the port always written (a CONNECT authority). */
  private readonly byAuthority = new Map<string, string>();

  constructor(options: UpstreamOptions) {
    this.options = options;
    this.defaultHost = options.defaultUpstream ? new URL(options.defaultUpstream).host : undefined;
    const urls = [...options.registries.values(), ...(options.defaultUpstream ? [options.defaultUpstream] : [])];
    for (const url of urls) {
      this.byUrlHost.set(new URL(url).host, url);
      this.byAuthority.set(authorityOf(url), url);
    }
  }

  /** Resolves the upstream for a request; `proxyHost` is the `host[:port]` of an absolute-URI proxy request. */
  resolve(source: { ns?: string | undefined; proxyHost?: string | undefined }): Upstream {
    if (source.proxyHost !== undefined) {
      const host = source.proxyHost.toLowerCase();
      const url = this.options.registries.get(host) ?? this.byUrlHost.get(host);
      if (url) return this.make(host, url);
      throw new PollenError('ERR_PROXY_TARGET_DENIED', `the proxy serves configured registries only, and ${host.slice(0, 100)} is not one (add --registry ${host.slice(0, 100)}=URL)`, {
        target: host.slice(0, 100),
      });
    }
    if (source.ns !== undefined) {
      if (!HOST_PORT.test(source.ns) || source.ns.length > 255) {
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

  /**
   * The tunnel endpoint for `CONNECT host:port`, when that names a configured registry: a
   * `--registry` HOST (given with this port, or without one and 443), or a configured URL's own
   * host and port. Undefined for anything else.
   */
  tunnelTarget(authority: string): TunnelTarget | undefined {
    const a = authority.toLowerCase();
    if (!HOST_PORT.test(a) || a.length > 261) return undefined;
    const colon = a.lastIndexOf(':');
    if (colon < 0) return undefined;
    const [host, port] = [a.slice(0, colon), a.slice(colon + 1)];
    const url = this.options.registries.get(a) ?? (port === '443' ? this.options.registries.get(host) : undefined) ?? this.byAuthority.get(a);
    if (!url) return undefined;
    const to = authorityOf(url);
    const i = to.lastIndexOf(':');
    return { host: to.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(to.slice(i + 1)) };
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

/** `host:port` of a URL, with the scheme's default port written out (URL.host leaves it out). */
function authorityOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
}
