import { describe, expect, it } from 'vitest';
import { redactConfig, resolveConfig, validateHostPort, type Setting } from '../../../src/config.ts';
import { API_LIMITS } from '../../../src/p2p/supernode-api.ts';
import { PEER_SETTINGS } from '../../../peer/config.ts';
import { SUPERNODE_SETTINGS } from '../../../supernode/config.ts';

const TABLE = [
  { key: 'listen', type: 'string', flag: 'listen', env: 'T_LISTEN', default: '127.0.0.1:1', help: 'x', validate: validateHostPort },
  { key: 'n', type: 'int', flag: 'n', env: 'T_N', default: 3, help: 'x' },
  { key: 'slots', type: 'int', min: 1, max: 8, flag: 'slots', env: 'T_SLOTS', default: 1, help: 'x' },
  { key: 'rate', type: 'int', min: 0, flag: 'rate', env: 'T_RATE', default: 0, help: 'x' },
  { key: 'on', type: 'bool', flag: 'on', env: 'T_ON', default: false, help: 'x' },
  { key: 'list', type: 'list', flag: 'list', env: 'T_LIST', default: [], help: 'x' },
  { key: 'secret', type: 'string', flag: 'secret', env: 'T_SECRET', default: undefined, help: 'x', secret: true },
] as const satisfies readonly Setting[];

describe('resolveConfig', () => {
  it('takes flag over env over default, and freezes the result', () => {
    const c = resolveConfig(TABLE, { n: '7' }, { T_N: '9', T_ON: 'yes', T_LIST: 'a, b' });
    expect(c).toEqual({ listen: '127.0.0.1:1', n: 7, slots: 1, rate: 0, on: true, list: ['a', 'b'], secret: undefined });
    expect(Object.isFrozen(c)).toBe(true);
  });
  it('names the key, the source and the reason of a bad value', () => {
    expect(() => resolveConfig(TABLE, { n: 'x' }, {})).toThrow(/invalid n \(--n\): expected an integer/);
    expect(() => resolveConfig(TABLE, {}, { T_LISTEN: 'nope' })).toThrow(/invalid listen \(\$T_LISTEN\): expected HOST:PORT/);
    expect(() => resolveConfig(TABLE, {}, { T_ON: 'maybe' })).toThrow(/invalid on \(\$T_ON\)/);
  });
  it("refuses an int outside its setting's range, from any source, with the range", () => {
    expect(resolveConfig(TABLE, { slots: '8', rate: '0' }, {})).toMatchObject({ slots: 8, rate: 0 });
    expect(() => resolveConfig(TABLE, { slots: '9' }, {})).toThrow(/invalid slots \(--slots\): expected an integer from 1 to 8, got 9/);
    expect(() => resolveConfig(TABLE, {}, { T_SLOTS: '0' })).toThrow(/invalid slots \(\$T_SLOTS\): expected an integer from 1 to 8, got 0/);
    expect(() => resolveConfig(TABLE, { rate: '-1' }, {})).toThrow(/invalid rate \(--rate\): expected an integer of 0 or more, got -1/);
    const file = new Map([['slots', { value: 64, source: 'pollen.yaml:3 slots' }]]);
    expect(() => resolveConfig(TABLE, {}, {}, file)).toThrow(/invalid slots \(pollen.yaml:3 slots\): expected an integer from 1 to 8/);
  });
  it("the daemons' counts and durations have ranges: none takes a negative, nor a count the other side would refuse", () => {
    expect(() => resolveConfig(SUPERNODE_SETTINGS, { maxParents: '9' }, {})).toThrow(/invalid maxParents \(--max-parents\): expected an integer from 1 to 8/);
    expect(() => resolveConfig(SUPERNODE_SETTINGS, { syncRate: '-5' }, {})).toThrow(/invalid syncRate/);
    expect(() => resolveConfig(PEER_SETTINGS, { uploadSlots: String(API_LIMITS.uploadSlots + 1) }, {})).toThrow(/invalid uploadSlots/);
    expect(() => resolveConfig(PEER_SETTINGS, { supernodeTimeoutMs: '0' }, {})).toThrow(/invalid supernodeTimeoutMs/);
    for (const table of [PEER_SETTINGS, SUPERNODE_SETTINGS] as readonly (readonly Setting[])[]) {
      for (const s of table.filter((t) => t.type === 'int')) {
        expect(s.min, s.key).toBeGreaterThanOrEqual(0);
        expect(resolveConfig(table, {}, {})[s.key], s.key).toBeGreaterThanOrEqual(s.min!);
      }
    }
  });
  it('redacts secrets for the log line', () => {
    const c = resolveConfig(TABLE, { secret: 'hunter2' }, {});
    expect(JSON.stringify(redactConfig(TABLE, c))).not.toContain('hunter2');
  });
});
