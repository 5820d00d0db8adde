// containerd: `certs.d/<registry>/hosts.toml`, read at every pull (CRI's `config_path`, or
// `ctr --hosts-dir`). Hosts are tried in order, then `server`; the Pollen peer goes first, any other
// hosts and keys the file had stay after it, and `server` (the registry itself) remains the
// fallback, so pulls keep working while the peer is down. containerd adds `?ns=<registry>` to each
// request, which is how one peer mirrors many registries.
import { PollenError } from '../errors.ts';
import { DOCKER_HUB, type Mirror } from './mirror.ts';
import { isTable, parseToml, stringifyToml, type TomlTable } from './toml.ts';

export const CONTAINERD_CONFIG_DIR = '/etc/containerd/certs.d';

const CAPABILITIES = ['pull', 'resolve'];

/** The registry itself, tried when no host answers (Docker Hub's API is not at docker.io). */
export function containerdServer(registry: string): string {
  return DOCKER_HUB.has(registry) ? 'https://registry-1.docker.io' : `https://${registry}`;
}

/** certs.d names Docker Hub `docker.io`, whatever alias was given. */
export function containerdHostDir(registry: string): string {
  return DOCKER_HUB.has(registry) ? 'docker.io' : registry;
}

/** The new hosts.toml, given the current one (undefined when there is none). Unchanged text when already configured. */
export function containerdHostsToml(existing: string | undefined, path: string, registry: string, mirror: Mirror): string {
  const old: TomlTable = existing === undefined || existing.trim() === '' ? {} : parseToml(existing, path);
  if (old.host !== undefined && !isTable(old.host)) throw new PollenError('ERR_INVALID_CONFIG', `${path}: host must be a table of [host."URL"] entries`, { path });
  const hosts = (old.host ?? {}) as TomlTable;
  const firstKey = Object.keys(hosts)[0];
  const first = firstKey === undefined ? undefined : hosts[firstKey];
  const already = firstKey === mirror.url && isTable(first) && Array.isArray(first.capabilities) && CAPABILITIES.every((c) => (first.capabilities as unknown[]).includes(c));
  if (existing !== undefined && already) return existing;
  const { server, host: _host, ...rest } = old;
  const previous = hosts[mirror.url];
  const ours = { ...(isTable(previous) ? previous : {}), capabilities: CAPABILITIES };
  const others = Object.fromEntries(Object.entries(hosts).filter(([url]) => url !== mirror.url));
  const header = `# Pulls of ${registry} try the Pollen peer at ${mirror.url} first, then the registry (written by \`pollen configure containerd\`).\n`;
  return header + stringifyToml({ server: server ?? containerdServer(registry), ...rest, host: { [mirror.url]: ours, ...others } });
}
