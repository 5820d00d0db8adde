// podman, CRI-O, skopeo, buildah: containers-registries.conf(5) v2, `[[registry]]` with
// `[[registry.mirror]]`. A registry with no entry gets one appended as text, so the rest of the
// file (comments included) is untouched; an existing entry gets the peer as its first mirror, which
// means rewriting the file from its parsed form (comments are lost; the caller keeps a backup).
// These engines name no registry to a mirror: the peer serves them from its `upstream`.
import { PollenError } from '../errors.ts';
import type { Mirror } from './mirror.ts';
import { isTable, parseToml, stringifyToml, type TomlTable } from './toml.ts';

export const CONTAINERS_CONFIG_DIR = '/etc/containers';

function block(host: string, mirror: Mirror): string {
  return (
    `# Pulls of ${host} go through the Pollen peer first (written by \`pollen configure podman\`).\n` +
    `[[registry]]\nprefix = "${host}"\nlocation = "${host}"\n\n[[registry.mirror]]\nlocation = "${mirror.hostPort}"\ninsecure = ${mirror.insecure}\n`
  );
}

function entriesOf(doc: TomlTable, path: string): TomlTable[] {
  if ('registries' in doc) {
    throw new PollenError('ERR_INVALID_CONFIG', `${path}: this is the v1 format ([registries.search]); convert it to v2 ([[registry]]) first`, { path });
  }
  const list = doc.registry ?? [];
  if (!Array.isArray(list) || !list.every(isTable)) throw new PollenError('ERR_INVALID_CONFIG', `${path}: registry must be an array of tables ([[registry]])`, { path });
  return list as TomlTable[];
}

/** The new registries.conf, given the current one (undefined when there is none). Unchanged text when already configured. */
export function registriesConf(existing: string | undefined, path: string, registries: readonly string[], mirror: Mirror): string {
  let text = existing ?? '';
  for (const host of registries) {
    const doc = text.trim() === '' ? {} : parseToml(text, path);
    const entries = entriesOf(doc, path);
    const entry = entries.find((e) => (e.prefix ?? e.location) === host);
    if (entry === undefined) {
      const appended = `${text}${text === '' || text.endsWith('\n\n') ? '' : text.endsWith('\n') ? '\n' : '\n\n'}${block(host, mirror)}`;
      try {
        parseToml(appended, path);
        text = appended;
      } catch {
        // The file holds its entries as an inline array, which [[registry]] cannot extend.
        text = stringifyToml({ ...doc, registry: [...entries, { prefix: host, location: host, mirror: [{ location: mirror.hostPort, insecure: mirror.insecure }] }] });
      }
      continue;
    }
    const mirrors = entry.mirror ?? [];
    if (!Array.isArray(mirrors) || !mirrors.every(isTable)) throw new PollenError('ERR_INVALID_CONFIG', `${path}: the mirrors of ${host} must be [[registry.mirror]] tables`, { path });
    if (mirrors.some((m) => m.location === mirror.hostPort)) continue;
    entry.mirror = [{ location: mirror.hostPort, insecure: mirror.insecure }, ...mirrors];
    text = `# Rewritten by \`pollen configure podman\` (the previous file, with its comments, is kept beside it as .pollen-bak).\n${stringifyToml(doc)}`;
  }
  return text;
}
