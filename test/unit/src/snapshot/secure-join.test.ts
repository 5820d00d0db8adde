import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEntryName, secureJoin } from '../../../../src/snapshot/secure-join.ts';

describe('secureJoin', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pollen-sj-'));
    await mkdir(join(root, 'usr/lib'), { recursive: true });
    await symlink('usr/lib', join(root, 'lib'));
    await symlink('/usr/lib', join(root, 'abs'));
    await symlink('../../../../..', join(root, 'up'));
    await symlink('loop2', join(root, 'loop1'));
    await symlink('loop1', join(root, 'loop2'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('cleans names lexically and flags climbs above the root', () => {
    expect(cleanEntryName('./a/b/../c')).toEqual({ rel: 'a/c', clamped: false });
    expect(cleanEntryName('../../etc/passwd')).toEqual({ rel: 'etc/passwd', clamped: true });
    expect(cleanEntryName('/etc/passwd')).toEqual({ rel: 'etc/passwd', clamped: true });
  });

  it('follows relative and absolute symlinks as if the root were /', async () => {
    expect((await secureJoin(root, 'lib/x')).path).toBe(join(root, 'usr/lib/x'));
    expect((await secureJoin(root, 'abs/x')).path).toBe(join(root, 'usr/lib/x'));
    expect((await secureJoin(root, 'abs/x')).clamped).toBe(false);
  });

  it('clamps a symlink climbing above the root and reports it', async () => {
    const r = await secureJoin(root, 'up/etc/passwd');
    expect(r.path).toBe(join(root, 'etc/passwd'));
    expect(r.clamped).toBe(true);
  });

  it('fails on symlink loops instead of spinning', async () => {
    await expect(secureJoin(root, 'loop1/x')).rejects.toThrow(/too many levels/);
  });
});
