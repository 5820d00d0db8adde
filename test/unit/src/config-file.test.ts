// Config files: the layer between the environment and the defaults, with every mistake named by
// file, line and key.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfigFile } from '../../../src/config-file.ts';
import { redactConfig, resolveConfig, validateHostPort, type Setting } from '../../../src/config.ts';
import { START_EXTRA_SETTINGS, START_SETTINGS } from '../../../cli/start-settings.ts';

const TABLE = [
  { key: 'listen', type: 'string', flag: 'listen', env: 'T_LISTEN', default: '127.0.0.1:1', help: 'x', validate: validateHostPort },
  { key: 'uploadSlots', type: 'int', flag: 'upload-slots', env: 'T_SLOTS', default: 3, help: 'x' },
  { key: 'on', type: 'bool', flag: 'on', env: 'T_ON', default: false, help: 'x' },
  { key: 'registry', type: 'list', flag: 'registry', env: 'T_REGISTRY', default: [], help: 'x' },
  { key: 'secret', type: 'string', flag: 'secret', env: 'T_SECRET', default: undefined, help: 'x', secret: true },
] as const satisfies readonly Setting[];

const F = '/etc/pollen/peer.yaml';
const parse = (text: string) => parseConfigFile(text, F, TABLE);

describe('config files', () => {
  it('sit between the environment and the defaults: flag > env > file > default', () => {
    const file = parse('listen: 127.0.0.1:9\nupload-slots: 5\non: false\nregistry: [a=http://a]\n');
    const c = resolveConfig(TABLE, { uploadSlots: '7' }, { T_ON: 'yes' }, file);
    expect(c).toEqual({ listen: '127.0.0.1:9', uploadSlots: 7, on: true, registry: ['a=http://a'], secret: undefined });
    expect(resolveConfig(TABLE, {}, {}, file).uploadSlots).toBe(5);
  });

  it('takes a setting by its key or by its flag spelling', () => {
    expect(resolveConfig(TABLE, {}, {}, parse('uploadSlots: 4')).uploadSlots).toBe(4);
    expect(resolveConfig(TABLE, {}, {}, parse('upload-slots: 4')).uploadSlots).toBe(4);
  });

  it('refuses an unknown key with its line and the key that was meant', () => {
    expect(() => parse('listen: 127.0.0.1:9\nuplod-slots: 3\n')).toThrow(`${F}:2: unknown setting "uplod-slots" (did you mean upload-slots?)`);
    expect(() => parse('UPLOAD_SLOTS: 3')).toThrow(/did you mean upload-slots\?/);
    expect(() => parse('T_SECRET: x')).toThrow(/did you mean secret\?/);
    expect(() => parse('peer:\n  listen: 127.0.0.1:9\n')).toThrow(/unknown setting "peer" \(settings are top-level keys, not sections\)/);
    expect(() => parse('zzzzzzzz: 1')).toThrow(/unknown setting "zzzzzzzz"$/);
  });

  it('names the file, line and key of a value of the wrong type', () => {
    expect(() => parse('on: true\nupload-slots: ten\n')).toThrow(`invalid uploadSlots (${F}:2 upload-slots): expected an integer, got the string "ten"`);
    expect(() => parse('upload-slots: 2.5')).toThrow(/expected an integer, got the number 2.5/);
    expect(() => parse('secret: 12345678')).toThrow(/invalid secret \(.*:1 secret\): expected a string, got the number 12345678 \(quote it\)/);
    expect(() => parse('on: yes')).toThrow(/invalid on .*expected true or false, got the string "yes"/);
    expect(() => parse('registry: [a=b, 3]')).toThrow(/expected a list of strings; item 2 is the number 3/);
    expect(() => parse('listen: [a]')).toThrow(/expected a string, got a list/);
  });

  it('names the file and key when a value of the right type is not acceptable', () => {
    expect(() => resolveConfig(TABLE, {}, {}, parse('\nlisten: nope'))).toThrow(`invalid listen (${F}:2 listen): expected HOST:PORT, got "nope"`);
  });

  it('refuses a setting given twice, under one spelling or both', () => {
    expect(() => parse('upload-slots: 1\nuploadSlots: 2\n')).toThrow(`${F}:2: uploadSlots sets upload-slots again (already set at ${F}:1 upload-slots as upload-slots)`);
    expect(() => parse('on: true\non: false\n')).toThrow(/not valid YAML: Map keys must be unique/);
  });

  it('reads HOST=VALUE lists as a mapping and a lone string as a one-item list', () => {
    const c = resolveConfig(TABLE, {}, {}, parse('registry:\n  r.example:5000: https://r.example:5000\n  q.example: http://q\n'));
    expect(c.registry).toEqual(['r.example:5000=https://r.example:5000', 'q.example=http://q']);
    expect(resolveConfig(TABLE, {}, {}, parse('registry: a=http://a')).registry).toEqual(['a=http://a']);
  });

  it('leaves an empty value, an empty file and a comment-only file at the defaults', () => {
    for (const text of ['', '# nothing\n', 'listen:\nupload-slots: ~\n']) expect(resolveConfig(TABLE, {}, {}, parse(text))).toMatchObject({ listen: '127.0.0.1:1', uploadSlots: 3 });
  });

  it('refuses what is not a YAML mapping', () => {
    expect(() => parse('- listen')).toThrow(`${F}: expected a mapping of setting: value at the top level`);
    expect(() => parse('listen: [unclosed')).toThrow(new RegExp(`^${F}: not valid YAML`));
    expect(() => parse('a: &x [1]\nb: *x\n1: 2')).toThrow(/unknown setting "a"/);
  });

  it('redacts a secret that came from the file', () => {
    const c = resolveConfig(TABLE, {}, {}, parse('secret: "hunter2-hunter2"'));
    expect(c.secret).toBe('hunter2-hunter2');
    expect(JSON.stringify(redactConfig(TABLE, c))).not.toContain('hunter2');
  });

  it('reads a file from disk, and names a file it cannot read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pollen-config-file-'));
    try {
      await writeFile(join(dir, 'p.yaml'), 'upload-slots: 9\n');
      expect(loadConfigFile(join(dir, 'p.yaml'), TABLE).get('uploadSlots')?.value).toBe(9);
      expect(() => loadConfigFile(join(dir, 'missing.yaml'), TABLE)).toThrow(/cannot read config file .*missing\.yaml/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('gives `pollen start` one flat file: the peer keys and the embedded supernode keys', () => {
    const file = parseConfigFile('listen: 127.0.0.1:65001\nsupernode-listen: 127.0.0.1:8102\nmax-parents: 4\nadmin-token: "t0ken"\n', F, START_SETTINGS);
    expect(resolveConfig(START_EXTRA_SETTINGS, {}, {}, file)).toMatchObject({ supernodeListen: '127.0.0.1:8102', maxParents: 4, adminToken: 't0ken' });
    expect(() => parseConfigFile('supernode-listn: 127.0.0.1:1', F, START_SETTINGS)).toThrow(/did you mean supernode-listen\?/);
  });

  it('property: whichever sources are set, the highest one wins', () => {
    fc.assert(
      fc.property(fc.option(fc.integer({ min: 0, max: 1e6 })), fc.option(fc.integer({ min: 0, max: 1e6 })), fc.option(fc.integer({ min: 0, max: 1e6 })), fc.boolean(), (flag, env, file, kebab) => {
        const c = resolveConfig(TABLE, { uploadSlots: flag === null ? undefined : String(flag) }, { T_SLOTS: env === null ? undefined : String(env) }, file === null ? new Map() : parse(`${kebab ? 'upload-slots' : 'uploadSlots'}: ${file}`));
        expect(c.uploadSlots).toBe(flag ?? env ?? file ?? 3);
      }),
      { numRuns: 200 },
    );
  });
});
