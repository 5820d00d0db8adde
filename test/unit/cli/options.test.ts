// The command line's side of config files: `--config FILE` or $POLLEN_CONFIG, under flags and env.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addConfigOptions, configFromCommand } from '../../../cli/options.ts';
import type { Setting } from '../../../src/config.ts';

const TABLE = [
  { key: 'uploadSlots', type: 'int', flag: 'upload-slots', env: 'T_SLOTS', default: 3, help: 'x' },
  { key: 'logLevel', type: 'string', flag: 'log-level', env: 'T_LOG', default: 'info', help: 'x' },
] as const satisfies readonly Setting[];

function parsed(args: string[]): Command {
  const cmd = addConfigOptions(new Command('t').exitOverride(), TABLE);
  return cmd.parse(args, { from: 'user' });
}

describe('--config on the command line', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-options-'));
    await writeFile(join(dir, 'a.yaml'), 'upload-slots: 8\nlog-level: debug\n');
    await writeFile(join(dir, 'b.yaml'), 'upload-slots: 9\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the file named by --config, under the flags and the environment', () => {
    expect(configFromCommand(parsed(['--config', join(dir, 'a.yaml')]), TABLE, {})).toEqual({ uploadSlots: 8, logLevel: 'debug' });
    expect(configFromCommand(parsed(['--config', join(dir, 'a.yaml'), '--upload-slots', '5']), TABLE, { T_LOG: 'warn' })).toEqual({ uploadSlots: 5, logLevel: 'warn' });
  });

  it('falls back to $POLLEN_CONFIG, and --config wins over it', () => {
    expect(configFromCommand(parsed([]), TABLE, { POLLEN_CONFIG: join(dir, 'b.yaml') }).uploadSlots).toBe(9);
    expect(configFromCommand(parsed(['--config', join(dir, 'a.yaml')]), TABLE, { POLLEN_CONFIG: join(dir, 'b.yaml') }).uploadSlots).toBe(8);
    expect(configFromCommand(parsed([]), TABLE, {}).uploadSlots).toBe(3);
  });

  it('stops on a file that does not exist', () => {
    expect(() => configFromCommand(parsed(['--config', join(dir, 'nope.yaml')]), TABLE, {})).toThrow(/cannot read config file/);
  });
});
