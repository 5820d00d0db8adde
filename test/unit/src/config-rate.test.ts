// Rate settings (`--upload-rate`, `--download-rate`, `--seed-registry-rate`): bytes per second as an
// integer (what `--upload-rate` always took) or a size per second, from a flag, the environment or
// a config file (a YAML number or string).
import { describe, expect, it } from 'vitest';
import { parseConfigFile } from '../../../src/config-file.ts';
import { resolveConfig, type Setting } from '../../../src/config.ts';
import { parseRate } from '../../../src/units.ts';

const TABLE = [{ key: 'rate', type: 'rate', flag: 'rate', env: 'T_RATE', default: 0, help: 'x' }] as const satisfies readonly Setting[];

describe('rate settings', () => {
  it('read an integer as bytes per second and a size as that size per second', () => {
    expect(parseRate('1048576')).toBe(1 << 20);
    expect(parseRate('50MiB')).toBe(50 << 20);
    expect(parseRate('50MiB/s')).toBe(50 << 20);
    expect(parseRate('100 MB/s')).toBe(100_000_000);
    expect(parseRate('0')).toBe(0);
    expect(() => parseRate('fast')).toThrow(/expected a rate in bytes per second/);
    expect(() => parseRate('-5')).toThrow(/expected a rate/);
  });

  it('resolve from flag, env and file to a number, and name the key of a bad value', () => {
    expect(resolveConfig(TABLE, { rate: '4194304' }, {}).rate).toBe(4 << 20);
    expect(resolveConfig(TABLE, {}, { T_RATE: '8MiB' }).rate).toBe(8 << 20);
    expect(resolveConfig(TABLE, {}, {}).rate).toBe(0);
    expect(resolveConfig(TABLE, {}, {}, parseConfigFile('rate: 1048576\n', 'f.yaml', TABLE)).rate).toBe(1 << 20);
    expect(resolveConfig(TABLE, {}, {}, parseConfigFile('rate: 16MiB\n', 'f.yaml', TABLE)).rate).toBe(16 << 20);
    expect(() => resolveConfig(TABLE, { rate: 'lots' }, {})).toThrow(/invalid rate \(--rate\): expected a rate/);
    expect(() => parseConfigFile('rate: -1\n', 'f.yaml', TABLE)).toThrow(/expected bytes per second/);
    expect(() => parseConfigFile('rate: [1]\n', 'f.yaml', TABLE)).toThrow(/expected bytes per second/);
  });
});
