// Directory mtimes are applied at the end of a layer. A later entry may have replaced the
// directory, or one above it, with a symlink to a host directory: the host directory's times must
// not change, and the directories still in place get their times.
import { lstat, mkdir, mkdtemp, readlink, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyLayer } from '../../../../src/snapshot/apply-layer.ts';
import { buildTar } from '../../../helpers/images.ts';

const OLD = new Date('2001-01-01T00:00:00Z');
const NEW = new Date('2030-01-01T00:00:00Z');

describe('deferred directory times', () => {
  let dir: string;
  let root: string;
  let host: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-dirtimes-'));
    root = join(dir, 'rootfs');
    host = join(dir, 'host-dir');
    await mkdir(root);
    await mkdir(join(host, 'sub'), { recursive: true });
    for (const p of [join(host, 'sub'), host]) await utimes(p, OLD, OLD);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('never follow a symlink that replaced the directory or a directory above it', async () => {
    const tar = await buildTar([
      { type: 'directory', name: 'abs/', mtime: NEW },
      { type: 'directory', name: 'rel/', mtime: NEW },
      { type: 'directory', name: 'up/', mtime: NEW },
      { type: 'directory', name: 'up/sub/', mtime: NEW },
      { type: 'directory', name: 'kept/', mtime: NEW },
      { type: 'symlink', name: 'abs', linkname: host },
      { type: 'symlink', name: 'rel', linkname: '../host-dir' },
      { type: 'symlink', name: 'up', linkname: host },
    ]);
    await applyLayer(root, Readable.from([tar]));
    expect(await readlink(join(root, 'abs'))).toBe(host);
    expect((await lstat(host)).mtimeMs).toBe(OLD.getTime());
    expect((await lstat(join(host, 'sub'))).mtimeMs).toBe(OLD.getTime());
    expect((await lstat(join(root, 'kept'))).mtimeMs).toBe(NEW.getTime());
  });
});
