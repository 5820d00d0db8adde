// The README's reference tables are the code's own: every setting and every error code, verbatim.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { referenceTables } from '../../cli/commands/docs.ts';

const README = readFileSync(resolve(fileURLToPath(import.meta.url), '../../../README.md'), 'utf8');

describe('README', () => {
  it('holds the configuration tables exactly as `pollen docs` prints them', () => {
    expect(README).toContain(referenceTables().config);
  });
  it('documents the config file format as `pollen docs` prints it', () => {
    expect(README).toContain(referenceTables().configFile);
  });
  it('holds the error-code table exactly as the code defines it', () => {
    expect(README).toContain(referenceTables().errors);
  });
  it('names the two commands a newcomer needs', () => {
    expect(README).toContain('./scripts/start.sh');
    expect(README).toContain('./scripts/test.sh');
  });
});
