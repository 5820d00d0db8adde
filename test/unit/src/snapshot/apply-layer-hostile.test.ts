// Hand-made hostile tars (test/fixtures/hostile/): applied to DIR/rootfs next to DIR/canary, the
// canary must stay untouched and the outcome must be the documented one: contained inside the
// root and reported, or refused with ERR_LAYER_INVALID.
import { createReadStream, existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPollenError } from '../../../../src/errors.ts';
import { applyLayer } from '../../../../src/snapshot/apply-layer.ts';
import { buildTar } from '../../../helpers/images.ts';

const FIXTURES = resolve(import.meta.dirname, '../../../fixtures/hostile');
const HOST_MARKER = '/etc/pollen-hostile-pwned';

describe('hostile layers stay inside the rootfs', () => {
  let dir: string;
  let root: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-hostile-'));
    root = join(dir, 'rootfs');
    await mkdir(root);
    await mkdir(join(dir, 'canary'));
    await writeFile(join(dir, 'canary', 'secret'), 'secret');
  });

  afterEach(async () => {
    // The canary is untouched: same entries, same content, not hardlinked anywhere.
    expect(await readdir(dir)).toEqual(['canary', 'rootfs']);
    expect(await readdir(join(dir, 'canary'))).toEqual(['secret']);
    expect(await readFile(join(dir, 'canary', 'secret'), 'utf8')).toBe('secret');
    expect((await lstat(join(dir, 'canary', 'secret'))).nlink).toBe(1);
    expect(existsSync(HOST_MARKER)).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });

  const apply = (fixture: string) => applyLayer(root, createReadStream(join(FIXTURES, fixture)));
  const reasons = (r: { warnings: readonly { entry: string }[] }) => r.warnings.map((w) => w.entry);

  it('dotdot.tar: `..` names are clamped inside the root and reported', async () => {
    const r = await apply('dotdot.tar');
    expect(await readFile(join(root, 'canary', 'pwned'), 'utf8')).toBe('pwned');
    expect(await readFile(join(root, 'canary', 'pwned2'), 'utf8')).toBe('pwned');
    expect(reasons(r)).toEqual(['../canary/pwned', 'a/../../../canary/pwned2']);
  });

  it('absolute.tar: absolute names land under the root and are reported', async () => {
    const r = await apply('absolute.tar');
    expect(existsSync(join(root, 'canary', 'pwned'))).toBe(true);
    expect(existsSync(join(root, 'etc', 'pollen-hostile-pwned'))).toBe(true);
    expect(reasons(r)).toEqual(['/canary/pwned', HOST_MARKER]);
  });

  it('symlink-escape.tar: files beneath symlinks to the outside are written inside the root', async () => {
    const r = await apply('symlink-escape.tar');
    expect(await readlink(join(root, 'esc'))).toBe('../canary');
    expect(existsSync(join(root, 'canary', 'pwned'))).toBe(true);
    expect(existsSync(join(root, 'etc', 'pollen-hostile-pwned'))).toBe(true);
    expect(existsSync(join(root, 'canary', 'pwned3'))).toBe(true);
    expect(reasons(r)).toEqual(['esc/pwned', 'deep/canary/pwned3']);
  });

  it('symlink-overwrite.tar: a file replacing a symlink replaces the link, never writes through it', async () => {
    await apply('symlink-overwrite.tar');
    const st = await lstat(join(root, 'link'));
    expect(st.isFile()).toBe(true);
    expect(await readFile(join(root, 'link'), 'utf8')).toBe('overwritten');
  });

  it('dir-swap.tar: a directory swapped for an escaping symlink redirects later entries inside the root', async () => {
    const r = await apply('dir-swap.tar');
    expect(await readlink(join(root, 'd'))).toBe('../canary');
    expect(await readFile(join(root, 'canary', 'g'), 'utf8')).toBe('pwned');
    expect(reasons(r)).toEqual(['d/g']);
  });

  it('hardlink-escape.tar: a hardlink to the outside is refused (its target is not in the root)', async () => {
    const err = await apply('hardlink-escape.tar').catch((e: unknown) => e);
    expect(isPollenError(err, 'ERR_LAYER_INVALID')).toBe(true);
    expect(existsSync(join(root, 'hl'))).toBe(false);
  });

  it('hardlink-symlink-escape.tar: a hardlink through an escaping symlink is refused', async () => {
    const err = await apply('hardlink-symlink-escape.tar').catch((e: unknown) => e);
    expect(isPollenError(err, 'ERR_LAYER_INVALID')).toBe(true);
    expect(existsSync(join(root, 'hl'))).toBe(false);
  });

  it('a hardlink replacing the directory that holds its own target is refused (found by the property test)', async () => {
    await mkdir(join(root, 'b'));
    await writeFile(join(root, 'b', 'f'), 'f');
    const tar = await buildTar([{ type: 'link', name: 'b', linkname: 'b/f' }]);
    const err = await applyLayer(root, Readable.from([tar])).catch((e: unknown) => e);
    expect(isPollenError(err, 'ERR_LAYER_INVALID')).toBe(true);
    expect(await readFile(join(root, 'b', 'f'), 'utf8')).toBe('f');
  });

  it('whiteout-escape.tar: whiteouts that climb out or name `.`/`..` remove nothing outside', async () => {
    await mkdir(join(root, 'sub'));
    await writeFile(join(root, 'keep'), 'keep');
    const r = await apply('whiteout-escape.tar');
    expect(existsSync(join(root, 'keep'))).toBe(true);
    expect(existsSync(join(root, 'sub'))).toBe(true);
    expect(reasons(r)).toEqual(['../.wh.canary', 'esc/.wh.secret', '.wh...', 'sub/.wh..']);
  });
});
