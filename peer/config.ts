// The peer's settings: one table of key, flag, env var, default and help (see src/config.ts).
import { homedir } from 'node:os';
import { join } from 'node:path';
import { validateHostPort, validateHttpUrl, type ConfigValues, type Setting } from '../src/config.ts';

function validateMappings(what: string) {
  return (v: readonly string[]): string | undefined => {
    for (const m of v) {
      const i = m.indexOf('=');
      if (i <= 0) return `${what} entries are HOST=VALUE, got ${JSON.stringify(m.replace(/:.*$/, ':…'))}`;
    }
    return undefined;
  };
}

/** Expands a leading `~/` (defaults are written that way so the docs read the same for everyone). */
export function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

export const PEER_SETTINGS = [
  { key: 'listen', type: 'string', flag: 'listen', env: 'POLLEN_LISTEN', default: '127.0.0.1:65001', help: 'address of the registry mirror and HTTP proxy', validate: validateHostPort },
  { key: 'data', type: 'string', flag: 'data', env: 'POLLEN_DATA', default: '~/.pollen', help: 'data directory (content store, metadata)' },
  { key: 'upstream', type: 'string', flag: 'upstream', env: 'POLLEN_UPSTREAM', default: undefined, help: 'default upstream registry URL, used when a request names no registry', validate: validateHttpUrl },
  { key: 'registry', type: 'list', flag: 'registry', env: 'POLLEN_REGISTRY', default: [], help: 'HOST=URL: the URL that reaches registry HOST (for ?ns=HOST and proxy requests)', validate: validateMappings('--registry') },
  { key: 'credentials', type: 'list', flag: 'credentials', env: 'POLLEN_CREDENTIALS', default: [], help: 'HOST=USER:PASSWORD: static credentials for an upstream, used when the client sends none', secret: true, validate: validateMappings('--credentials') },
  { key: 'accessTtlMs', type: 'int', flag: 'access-ttl-ms', env: 'POLLEN_ACCESS_TTL_MS', default: 30_000, help: 'how long an upstream access decision (per credential and repository) is trusted' },
  { key: 'accessGraceMs', type: 'int', flag: 'access-grace-ms', env: 'POLLEN_ACCESS_GRACE_MS', default: 3_600_000, help: 'how long an expired "allowed" decision still serves cached content while the upstream is unreachable' },
  { key: 'upstreamTimeoutMs', type: 'int', flag: 'upstream-timeout-ms', env: 'POLLEN_UPSTREAM_TIMEOUT_MS', default: 30_000, help: 'connect and header timeout for upstream requests' },
  { key: 'logLevel', type: 'string', flag: 'log-level', env: 'POLLEN_LOG_LEVEL', default: 'info', help: 'log level (fatal, error, warn, info, debug, trace)' },
] as const satisfies readonly Setting[];

export interface PeerConfig {
  readonly listen: string;
  readonly data: string;
  readonly upstream: string | undefined;
  /** Registry host (as clients name it) → base URL. */
  readonly registries: ReadonlyMap<string, string>;
  /** Registry host → `user:password` used when the client sends no Authorization. */
  readonly credentials: ReadonlyMap<string, string>;
  readonly accessTtlMs: number;
  readonly accessGraceMs: number;
  readonly upstreamTimeoutMs: number;
  readonly logLevel: string;
}

function mapping(list: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const entry of list) {
    const i = entry.indexOf('=');
    m.set(entry.slice(0, i).trim(), entry.slice(i + 1).trim().replace(/\/+$/, ''));
  }
  return m;
}

export function peerConfigFrom(values: ConfigValues): PeerConfig {
  return Object.freeze({
    listen: values.listen as string,
    data: expandHome(values.data as string),
    upstream: (values.upstream as string | undefined)?.replace(/\/+$/, ''),
    registries: mapping(values.registry as readonly string[]),
    credentials: mapping(values.credentials as readonly string[]),
    accessTtlMs: values.accessTtlMs as number,
    accessGraceMs: values.accessGraceMs as number,
    upstreamTimeoutMs: values.upstreamTimeoutMs as number,
    logLevel: values.logLevel as string,
  });
}
