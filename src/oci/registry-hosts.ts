// Registries by the host name clients give them (`ns=HOST`, the host of an image reference) and the
// URL that reaches each one: the `--registry HOST=URL` lists of the peer and the supernode, plus
// `--upstream URL`, whose own host is its key. Both daemons parse the same list the same way, so a
// host key the peer sends means the same registry to the supernode (when both are so configured).
import { PollenError } from '../errors.ts';

/** A registry host as clients name it: `registry.example`, `127.0.0.1:5000`. */
const REGISTRY_HOST = /^[A-Za-z0-9.-]+(?::\d{1,5})?$/;
const MAX_HOST_LENGTH = 255;

export function isRegistryHost(s: string): boolean {
  return s.length <= MAX_HOST_LENGTH && REGISTRY_HOST.test(s);
}

/** `HOST=VALUE` entries (repeatable flags) as a map; the value's trailing slashes are dropped. */
export function parseHostMappings(list: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const entry of list) {
    const i = entry.indexOf('=');
    m.set(entry.slice(0, i).trim(), entry.slice(i + 1).trim().replace(/\/+$/, ''));
  }
  return m;
}

/**
 * A config validator for `HOST=VALUE` lists. With `urls`, each value must be an http(s) URL without
 * credentials in it (they would show in logs and error bodies).
 */
export function validateHostMappings(what: string, options: { urls?: boolean } = {}) {
  return (v: readonly string[]): string | undefined => {
    for (const m of v) {
      const i = m.indexOf('=');
      if (i <= 0) return `${what} entries are HOST=VALUE, got ${JSON.stringify(m.replace(/:.*$/, ':…'))}`;
      if (!options.urls) continue;
      const host = m.slice(0, i).trim();
      if (!isRegistryHost(host)) return `${what}: ${JSON.stringify(host.slice(0, 100))} is not a registry host (HOST or HOST:PORT)`;
      const why = registryUrlProblem(m.slice(i + 1).trim());
      if (why) return `${what} ${host}: ${why}`;
    }
    return undefined;
  };
}

/** Why `url` cannot be a registry base URL, or undefined when it can. */
export function registryUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'expected an http(s) URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'expected an http(s) URL';
  if (u.username || u.password) return 'credentials do not belong in the URL (give them to the client instead)';
  if (u.search || u.hash) return 'a registry URL has no query or fragment';
  return undefined;
}

export interface RegistryHostsOptions {
  /** `--upstream URL`: reached by the host of its own URL. */
  readonly defaultUpstream: string | undefined;
  /** `--registry HOST=URL`. */
  readonly registries: ReadonlyMap<string, string>;
}

/** The configured registries: host key → base URL. Nothing else is reachable through it. */
export class RegistryHosts {
  private readonly byHost = new Map<string, string>();
  readonly defaultHost: string | undefined;

  constructor(options: RegistryHostsOptions) {
    if (options.defaultUpstream) {
      const url = options.defaultUpstream.replace(/\/+$/, '');
      this.defaultHost = new URL(url).host;
      this.byHost.set(this.defaultHost, url);
    }
    // An explicit mapping wins over the default's own host.
    for (const [host, url] of options.registries) this.byHost.set(host, url.replace(/\/+$/, ''));
  }

  /** The base URL of registry `host`; ERR_UNKNOWN_UPSTREAM (naming the flag to add) when none is configured. */
  baseUrlOf(host: string, who = 'this daemon'): string {
    if (!isRegistryHost(host)) throw new PollenError('ERR_INVALID_REQUEST', `invalid registry host ${JSON.stringify(host.slice(0, 100))}`);
    const url = this.byHost.get(host);
    if (url === undefined) {
      throw new PollenError('ERR_UNKNOWN_UPSTREAM', `${who} is not configured to reach registry ${host}: add --registry ${host}=URL`, { registry: host });
    }
    return url;
  }

  get hosts(): string[] {
    return [...this.byHost.keys()];
  }
}
