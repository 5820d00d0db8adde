// TOML for container engine configuration (containerd's hosts.toml, containers' registries.conf):
// the one module that imports smol-toml. A parse error names the file and line.
import { parse, stringify, TomlError } from 'smol-toml';
import { PollenError } from '../errors.ts';

export type TomlTable = Record<string, unknown>;

export function parseToml(text: string, path: string): TomlTable {
  try {
    return parse(text) as TomlTable;
  } catch (err) {
    const where = err instanceof TomlError ? `${path}:${err.line}` : path;
    const why = (err as Error).message.split('\n')[0];
    throw new PollenError('ERR_INVALID_CONFIG', `${where}: not valid TOML: ${why}`, { path });
  }
}

export function stringifyToml(table: TomlTable): string {
  return stringify(table);
}

export function isTable(v: unknown): v is TomlTable {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
}
