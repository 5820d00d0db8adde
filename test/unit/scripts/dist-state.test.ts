// When bin/pollen.js takes dist/ for stale (scripts/dist-state.js): a source changed after the
// build, or one added, removed or renamed since; not a markdown file saved (renamed over) in a
// source folder, which changes the folder's time and no source.
import { mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain JavaScript build script without types
import { distStaleness, sourceFiles, STAMP, stampText } from '../../../scripts/dist-state.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A checkout with src/a.ts and src/notes.md, built at `builtAt` (sources a minute older). */
function checkout(): { root: string; builtAt: Date } {
  const root = mkdtempSync(join(tmpdir(), 'dist-state-'));
  dirs.push(root);
  mkdirSync(join(root, 'src'));
  mkdirSync(join(root, 'dist'));
  const before = new Date(Date.now() - 60_000);
  for (const f of ['src/a.ts', 'src/notes.md']) {
    writeFileSync(join(root, f), 'x');
    utimesSync(join(root, f), before, before);
  }
  const builtAt = new Date(Date.now() - 30_000);
  writeFileSync(join(root, STAMP), stampText(builtAt, sourceFiles(root)));
  utimesSync(join(root, STAMP), builtAt, builtAt);
  return { root, builtAt };
}

describe('distStaleness', () => {
  it('is up to date after the build, and after a markdown file in a source folder was saved by renaming a new copy over it', () => {
    const { root } = checkout();
    expect(distStaleness(root)).toBeUndefined();
    writeFileSync(join(root, 'src/.notes.md.swp'), 'y');
    renameSync(join(root, 'src/.notes.md.swp'), join(root, 'src/notes.md'));
    expect(distStaleness(root)).toBeUndefined();
  });

  it('is stale when a source changed after the build, or a source was added, removed or renamed', () => {
    const edited = checkout();
    writeFileSync(join(edited.root, 'src/a.ts'), 'y');
    expect(distStaleness(edited.root)).toMatch(/older than src\/a\.ts/);
    const renamed = checkout();
    renameSync(join(renamed.root, 'src/a.ts'), join(renamed.root, 'src/b.ts'));
    expect(distStaleness(renamed.root)).toMatch(/new src\/b\.ts, gone src\/a\.ts/);
    const removed = checkout();
    rmSync(join(removed.root, 'src/a.ts'));
    expect(distStaleness(removed.root)).toMatch(/gone src\/a\.ts/);
    const unbuilt = checkout();
    rmSync(join(unbuilt.root, STAMP));
    expect(distStaleness(unbuilt.root)).toMatch(/not been built/);
  });
});
