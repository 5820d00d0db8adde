// Table-driven configuration: each daemon declares one table of settings (key, flag, env var,
// default, help). The CLI builds its options from the table, `resolveConfig` merges flag > env >
// config file > default, validates (the error names the key, where the value came from, and why),
// and freezes. The README's configuration tables are generated from the same tables (`pollen docs`),
// so docs and code agree. Config files are read by src/config-file.ts.
import { PollenError } from './errors.ts';
import { parseRate } from './units.ts';

/** `rate`: bytes per second, given as an integer or a size (`50MiB`, `50MiB/s`); the value is the number. */
export type SettingType = 'string' | 'int' | 'bool' | 'list' | 'rate';

export interface Setting {
  readonly key: string;
  readonly type: SettingType;
  /** Long flag without dashes, e.g. `listen` for `--listen`. */
  readonly flag: string;
  readonly env: string;
  readonly default: string | number | boolean | readonly string[] | undefined;
  readonly help: string;
  /** Secrets are redacted when the config is logged. */
  readonly secret?: boolean;
  /** Returns a reason when the value is not acceptable. */
  readonly validate?: (value: never) => string | undefined;
  /** An int's least and greatest values (inclusive). */
  readonly min?: number;
  readonly max?: number;
}

export type ConfigValues = Readonly<Record<string, string | number | boolean | readonly string[] | undefined>>;

/** One value from a config file, already checked against its setting's type; `source` says where it is (`FILE:LINE key`). */
export interface FileValue {
  readonly value: string | number | boolean | readonly string[];
  readonly source: string;
}

/** A config file's values by setting key (see src/config-file.ts). */
export type FileValues = ReadonlyMap<string, FileValue>;

function parseValue(setting: Setting, raw: unknown, source: string): string | number | boolean | readonly string[] {
  const fail = (why: string): never => {
    throw new PollenError('ERR_INVALID_CONFIG', `invalid ${setting.key} (${source}): ${why}`, { key: setting.key, source });
  };
  switch (setting.type) {
    case 'string':
      if (typeof raw !== 'string') fail('expected a string');
      return raw as string;
    case 'int': {
      const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
      if (!Number.isSafeInteger(n)) fail(`expected an integer, got ${JSON.stringify(raw)}`);
      const { min, max } = setting;
      if ((min !== undefined && n < min) || (max !== undefined && n > max)) fail(`expected an integer ${max === undefined ? `of ${min} or more` : min === undefined ? `of ${max} or less` : `from ${min} to ${max}`}, got ${n}`);
      return n;
    }
    case 'rate': {
      if (typeof raw === 'number') {
        if (!Number.isSafeInteger(raw) || raw < 0) fail(`expected bytes per second (0 or more), got ${raw}`);
        return raw;
      }
      try {
        return parseRate(String(raw));
      } catch (err) {
        return fail((err as Error).message);
      }
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      return fail(`expected true or false, got ${JSON.stringify(raw)}`);
    }
    case 'list':
      if (Array.isArray(raw)) return raw.map(String);
      // From an environment variable: comma-separated.
      return String(raw)
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
  }
}

/**
 * Resolves a daemon's configuration. `flags` holds the values given on the command line (by setting
 * key; undefined when absent); `env` the process environment; `file` the values of a config file.
 * Precedence: flag > env > file > default.
 */
export function resolveConfig(
  table: readonly Setting[],
  flags: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>>,
  file: FileValues = new Map(),
): ConfigValues {
  const out: Record<string, string | number | boolean | readonly string[] | undefined> = {};
  for (const setting of table) {
    const fromFlag = flags[setting.key];
    const fromEnv = env[setting.env];
    const fromFile = file.get(setting.key);
    let value: string | number | boolean | readonly string[] | undefined;
    let source = 'default';
    if (fromFlag !== undefined && !(Array.isArray(fromFlag) && fromFlag.length === 0)) {
      source = `--${setting.flag}`;
      value = parseValue(setting, fromFlag, source);
    } else if (fromEnv !== undefined && fromEnv !== '') {
      source = `$${setting.env}`;
      value = parseValue(setting, fromEnv, source);
    } else if (fromFile !== undefined) {
      source = fromFile.source;
      value = parseValue(setting, fromFile.value, source);
    } else {
      value = setting.default;
    }
    if (value !== undefined && setting.validate) {
      const why = (setting.validate as (v: unknown) => string | undefined)(value);
      if (why) throw new PollenError('ERR_INVALID_CONFIG', `invalid ${setting.key} (${source}): ${why}`, { key: setting.key, source });
    }
    out[setting.key] = Array.isArray(value) ? Object.freeze([...value]) : value;
  }
  return Object.freeze(out);
}

/** The config with secrets replaced, for the one log line at start. */
export function redactConfig(table: readonly Setting[], config: ConfigValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const setting of table) {
    const v = config[setting.key];
    const empty = v === undefined || v === '' || (Array.isArray(v) && v.length === 0);
    out[setting.key] = setting.secret && !empty ? '[redacted]' : v;
  }
  return out;
}

/** A Markdown table of a daemon's settings, for the README. */
export function configMarkdown(table: readonly Setting[]): string {
  const rows = table.map((s) => {
    const def = s.default === undefined ? '' : Array.isArray(s.default) ? s.default.join(',') : String(s.default);
    return `| \`--${s.flag}\` | \`${s.env}\` | ${def === '' ? '' : `\`${def}\``} | ${s.help} |`;
  });
  return ['| flag | env var | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

// Validators shared by the daemons' tables.

export function validateHostPort(v: string): string | undefined {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(v);
  if (!m) return `expected HOST:PORT, got ${JSON.stringify(v)}`;
  const port = Number(m[2]);
  return port <= 65535 ? undefined : `port ${port} is out of range`;
}

export function validateHttpUrl(v: string): string | undefined {
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:' ? undefined : `expected an http(s) URL, got ${v}`;
  } catch {
    return `expected a URL, got ${JSON.stringify(v)}`;
  }
}

export function splitHostPort(v: string): { host: string; port: number } {
  const i = v.lastIndexOf(':');
  return { host: v.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(v.slice(i + 1)) };
}
