// The layout rules of conventions.md, checked by reading import lines: src/ is a library, the
// daemons never import each other, and each third-party library has exactly one adapter file.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const p = join(ROOT, dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(relative(ROOT, p)));
    else if (p.endsWith('.ts')) out.push(relative(ROOT, p));
  }
  return out;
}

function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms), ...text.matchAll(/import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]!);
}

const ALL = ['src', 'peer', 'supernode', 'cli'].flatMap(sources);

describe('layout boundaries', () => {
  it('src/ imports nothing from the daemons or the CLI, and reads no process.env or argv', () => {
    for (const f of sources('src')) {
      for (const i of importsOf(f)) expect(i, `${f} imports ${i}`).not.toMatch(/^\.\.\/(\.\.\/)*(peer|supernode|cli)\//);
      expect(readFileSync(join(ROOT, f), 'utf8'), f).not.toMatch(/process\.(env|argv)/);
    }
  });

  it('the supernode and the peer never import each other', () => {
    for (const f of sources('peer')) for (const i of importsOf(f)) expect(i, `${f} imports ${i}`).not.toMatch(/supernode\//);
    for (const f of sources('supernode')) for (const i of importsOf(f)) expect(i, `${f} imports ${i}`).not.toMatch(/(^|\/)peer\//);
  });

  it.each([
    ['classic-level', 1],
    ['bittorrent-protocol', 1],
    ['hyperswarm', 1],
    ['prom-client', 1],
    ['yaml', 1],
    ['smol-toml', 1],
    ['pino-pretty', 1],
    // The status page's browser test drives Chromium; no daemon code may.
    ['playwright-core', 0],
  ])('%s is imported by at most %i adapter file', (lib, max) => {
    const importers = ALL.filter((f) => importsOf(f).some((i) => i === lib || i.startsWith(`${lib}/`)));
    expect(importers.length, importers.join(', ')).toBeLessThanOrEqual(max);
  });

  it('has no default exports and no barrel index files', () => {
    for (const f of ALL) {
      expect(f.endsWith('/index.ts'), f).toBe(false);
      expect(readFileSync(join(ROOT, f), 'utf8'), f).not.toMatch(/^export default /m);
    }
  });
});
