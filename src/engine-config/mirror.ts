// What `pollen configure` is asked for: the Pollen peer's mirror URL and the registry hosts whose
// pulls go through it, checked once for every engine.
import { PollenError } from '../errors.ts';

export interface Mirror {
  /** `http://127.0.0.1:65001`: scheme, host and port, no path. */
  readonly url: string;
  /** `127.0.0.1:65001`: how registries.conf names a mirror. */
  readonly hostPort: string;
  /** Plain HTTP (the usual loopback peer). */
  readonly insecure: boolean;
}

/** The names Docker Hub goes by; containerd's fallback server for it is registry-1.docker.io. */
export const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

export function parseMirror(raw: string): Mirror {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new PollenError('ERR_INVALID_CONFIG', `invalid --mirror: expected a URL such as http://127.0.0.1:65001, got ${JSON.stringify(raw)}`, { key: 'mirror' });
  }
  const ok = (u.protocol === 'http:' || u.protocol === 'https:') && (u.pathname === '/' || u.pathname === '') && !u.search && !u.hash && !u.username && !u.password;
  if (!ok) throw new PollenError('ERR_INVALID_CONFIG', `invalid --mirror: expected http(s)://HOST[:PORT] with no path, got ${JSON.stringify(raw)}`, { key: 'mirror' });
  return { url: `${u.protocol}//${u.host}`, hostPort: u.host, insecure: u.protocol === 'http:' };
}

/** A registry host as engines name it: `registry.example:5000`, `docker.io`, `[::1]:5000`. */
export function checkRegistryHost(raw: string): string {
  const host = raw.trim().toLowerCase();
  const ok = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:]+\])(?::\d{1,5})?$/.test(host);
  if (!ok || host.length > 255) {
    throw new PollenError('ERR_INVALID_CONFIG', `invalid --registry: expected a registry host such as registry.example:5000, got ${JSON.stringify(raw)}`, { key: 'registry' });
  }
  return host;
}
