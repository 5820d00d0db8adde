// Commander options generated from a daemon's config table, and the resolution flag > env > default.
import { Option, type Command } from 'commander';
import { resolveConfig, type ConfigValues, type Setting } from '../src/config.ts';

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
  return cmd;
}

/** Reads the table's options from a parsed command (by flag's camelCase name) and resolves them. */
export function configFromCommand(cmd: Command, table: readonly Setting[], env: NodeJS.ProcessEnv = process.env): ConfigValues {
  const opts = cmd.opts() as Record<string, unknown>;
  const flags: Record<string, unknown> = {};
  for (const s of table) flags[s.key] = opts[camel(s.flag)];
  return resolveConfig(table, flags, env);
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
