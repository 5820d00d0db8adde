// dockerd: `daemon.json`'s `registry-mirrors`, merged into the existing file with every other key
// kept. dockerd sends only Docker Hub pulls to mirrors, and names no registry to them, so the peer
// serves them from its `upstream` (https://registry-1.docker.io). Applied by `systemctl reload docker`.
import { PollenError } from '../errors.ts';
import { DOCKER_HUB, type Mirror } from './mirror.ts';

export const DOCKER_CONFIG_DIR = '/etc/docker';

export function checkDockerRegistries(registries: readonly string[]): void {
  const other = registries.find((r) => !DOCKER_HUB.has(r));
  if (other !== undefined) {
    throw new PollenError(
      'ERR_INVALID_CONFIG',
      `dockerd sends only Docker Hub (docker.io) pulls to a mirror, not ${other}: for other registries use containerd's hosts.toml (\`pollen configure containerd\`) or pull ${other} images through the peer's own address`,
      { key: 'registry' },
    );
  }
}

/** The new daemon.json, given the current one. Unchanged text when the peer is already the first mirror. */
export function dockerDaemonJson(existing: string | undefined, path: string, mirror: Mirror): string {
  let old: Record<string, unknown> = {};
  if (existing !== undefined && existing.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(existing);
    } catch (err) {
      throw new PollenError('ERR_INVALID_CONFIG', `${path}: not valid JSON: ${(err as Error).message}`, { path });
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new PollenError('ERR_INVALID_CONFIG', `${path}: expected a JSON object`, { path });
    old = parsed as Record<string, unknown>;
  }
  const mirrors = old['registry-mirrors'];
  if (mirrors !== undefined && !(Array.isArray(mirrors) && mirrors.every((m) => typeof m === 'string'))) {
    throw new PollenError('ERR_INVALID_CONFIG', `${path}: registry-mirrors must be a list of URLs`, { path });
  }
  const same = (m: string) => m.replace(/\/+$/, '') === mirror.url;
  const list = (mirrors ?? []) as string[];
  if (existing !== undefined && list[0] !== undefined && same(list[0])) return existing;
  // Spread keeps every key where it was; a new registry-mirrors goes last.
  return `${JSON.stringify({ ...old, 'registry-mirrors': [mirror.url, ...list.filter((m) => !same(m))] }, null, 2)}\n`;
}
