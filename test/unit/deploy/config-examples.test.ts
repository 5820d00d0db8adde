// deploy/peer.yaml and deploy/supernode.yaml: the commented examples operators start from load,
// validate, and mention every setting (the commented-out lines are valid values too).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfigFile } from '../../../src/config-file.ts';
import { resolveConfig, type Setting } from '../../../src/config.ts';
import { PEER_SETTINGS, peerConfigFrom } from '../../../peer/config.ts';
import { SUPERNODE_SETTINGS, supernodeConfigFrom } from '../../../supernode/config.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');

/** Uncomments `# key: value` lines whose key is a setting, so the documented alternatives are checked as well. */
function uncommented(text: string, table: readonly Setting[]): string {
  const names = new Set(table.flatMap((s) => [s.flag, s.key]));
  return text.replace(/^# ([a-zA-Z-]+):(.*)$/gm, (line, key: string, rest: string) => (names.has(key) ? `${key}:${rest}` : line));
}

describe.each([
  ['deploy/peer.yaml', PEER_SETTINGS, (v: Parameters<typeof peerConfigFrom>[0]) => peerConfigFrom(v)],
  ['deploy/supernode.yaml', SUPERNODE_SETTINGS, (v: Parameters<typeof supernodeConfigFrom>[0]) => supernodeConfigFrom(v)],
] as const)('%s', (file, table, build) => {
  const text = readFileSync(resolve(ROOT, file), 'utf8');

  it('loads and validates as it ships, keeping data under the units’ StateDirectory', () => {
    const values = resolveConfig(table, {}, {}, parseConfigFile(text, file, table));
    const config = build(values);
    expect(config.data.startsWith('/var/lib/pollen/')).toBe(true);
  });

  it('still validates with every commented-out setting switched on', () => {
    const all = uncommented(text, table);
    expect(all).not.toBe(text);
    expect(() => resolveConfig(table, {}, {}, parseConfigFile(all, file, table))).not.toThrow();
  });

  it('mentions every setting an operator may set (kept in step with the table)', () => {
    for (const s of table as readonly Setting[]) {
      if (s.help.startsWith('TEST ONLY')) continue;
      expect(text, `${file} should mention ${s.flag} (commented out is fine)`).toMatch(new RegExp(`^(# )?${s.flag}:`, 'm'));
    }
  });

  it('holds no secret value', () => {
    const values = parseConfigFile(text, file, table);
    for (const s of table as readonly Setting[]) if (s.secret) expect(values.has(s.key), s.key).toBe(false);
  });
});
