// Commander options generated from a daemon's config table, `--config FILE`, and the resolution
// flag > env > config file > default.
import { Option, type Command } from 'commander';
import { loadConfigFile } from '../src/config-file.ts';
import { resolveConfig, type ConfigValues, type FileValues, type Setting } from '../src/config.ts';

/** The environment variable naming a config file when `--config` is absent. */
export const CONFIG_ENV = 'POLLEN_CONFIG';

export function addConfigOptions(cmd: Command, table: readonly Setting[]): Command {
  for (const s of table) {
    const def = s.default === undefined || (Array.isArray(s.default) && s.default.length === 0) ? '' : ` (default: ${Array.isArray(s.default) ? s.default.join(',') : String(s.default)}; env ${s.env})`;
    const help = `${s.help}${def || ` (env ${s.env})`}`;
    let opt: Option;
    if (s.type === 'bool') {
      opt = new Option(`--${s.flag} [bool]`, help).argParser((v: string | undefined) => v ?? 'true');
    } else if (s.type === 'list') {
      opt = new Option(`--${s.flag} <value>`, `${help}; repeatable`).argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    } else {
      opt = new Option(`--${s.flag} <value>`, help);
    }
    cmd.addOption(opt);
  }
  cmd.addOption(new Option('--config <file>', `YAML file of settings (keys: the flags without dashes); flags and env win over it (env ${CONFIG_ENV})`));
  return cmd;
}

/** The config file named by `--config` or `$POLLEN_CONFIG`, if any. */
export function configFilePath(cmd: Command, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return (cmd.opts() as { config?: string }).config ?? (env[CONFIG_ENV] || undefined);
}

/** Loads and checks the command's config file against `table` (all the keys the file may hold). */
export function configFileFromCommand(cmd: Command, table: readonly Setting[], env: NodeJS.ProcessEnv = process.env): FileValues {
  const path = configFilePath(cmd, env);
  return path === undefined ? new Map() : loadConfigFile(path, table);
}

/**
 * Reads the table's options from a parsed command (by flag's camelCase name) and resolves them with
 * the environment and the config file (loaded against `table` unless the caller loaded it already).
 */
export function configFromCommand(
  cmd: Command,
  table: readonly Setting[],
  env: NodeJS.ProcessEnv = process.env,
  file: FileValues = configFileFromCommand(cmd, table, env),
): ConfigValues {
  const opts = cmd.opts() as Record<string, unknown>;
  const flags: Record<string, unknown> = {};
  for (const s of table) flags[s.key] = opts[camel(s.flag)];
  return resolveConfig(table, flags, env, file);
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
