import { describe, expect, it } from 'vitest';
import { redactConfig, resolveConfig, validateHostPort, type Setting } from '../../../src/config.ts';

const TABLE = [
  { key: 'listen', type: 'string', flag: 'listen', env: 'T_LISTEN', default: '127.0.0.1:1', help: 'x', validate: validateHostPort },
  { key: 'n', type: 'int', flag: 'n', env: 'T_N', default: 3, help: 'x' },
  { key: 'on', type: 'bool', flag: 'on', env: 'T_ON', default: false, help: 'x' },
  { key: 'list', type: 'list', flag: 'list', env: 'T_LIST', default: [], help: 'x' },
  { key: 'secret', type: 'string', flag: 'secret', env: 'T_SECRET', default: undefined, help: 'x', secret: true },
] as const satisfies readonly Setting[];

describe('resolveConfig', () => {
  it('takes flag over env over default, and freezes the result', () => {
    const c = resolveConfig(TABLE, { n: '7' }, { T_N: '9', T_ON: 'yes', T_LIST: 'a, b' });
    expect(c).toEqual({ listen: '127.0.0.1:1', n: 7, on: true, list: ['a', 'b'], secret: undefined });
    expect(Object.isFrozen(c)).toBe(true);
  });
  it('names the key, the source and the reason of a bad value', () => {
    expect(() => resolveConfig(TABLE, { n: 'x' }, {})).toThrow(/invalid n \(--n\): expected an integer/);
    expect(() => resolveConfig(TABLE, {}, { T_LISTEN: 'nope' })).toThrow(/invalid listen \(\$T_LISTEN\): expected HOST:PORT/);
    expect(() => resolveConfig(TABLE, {}, { T_ON: 'maybe' })).toThrow(/invalid on \(\$T_ON\)/);
  });
  it('redacts secrets for the log line', () => {
    const c = resolveConfig(TABLE, { secret: 'hunter2' }, {});
    expect(JSON.stringify(redactConfig(TABLE, c))).not.toContain('hunter2');
  });
});
