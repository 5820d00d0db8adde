import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Digest } from '../../../../src/digest.ts';
import { SnapshotStore } from '../../../../src/snapshot/snapshot-store.ts';

describe('SnapshotStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-store-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('a child prepared from its parent shares content but changes to it never reach the parent', async () => {
    const store = await SnapshotStore.open(dir);
    const a = await store.prepare(undefined);
    await writeFile(join(a.dir, 'f'), 'parent');
    const ida = sha256Digest('a');
    await a.commit({ chainId: ida, parent: undefined, diffId: ida, size: 6 });
    const b = await store.prepare(ida);
    expect(await readFile(join(b.dir, 'f'), 'utf8')).toBe('parent');
    await rm(join(b.dir, 'f'));
    await writeFile(join(b.dir, 'f'), 'child');
    await b.abort();
    expect(await readFile(join(store.fsPath(ida), 'f'), 'utf8')).toBe('parent');
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    expect((await store.list()).map((s) => s.chainId)).toEqual([ida]);
  });

  it('open removes tmp entries of dead pulls and keeps those of a live process', async () => {
    const sleeper = spawn('sleep', ['30']);
    try {
      await mkdir(join(dir, 'tmp', `${sleeper.pid}-live`), { recursive: true });
      await mkdir(join(dir, 'tmp', '999999999-dead'), { recursive: true });
      await mkdir(join(dir, 'tmp', 'garbage'), { recursive: true });
      await SnapshotStore.open(dir);
      expect(await readdir(join(dir, 'tmp'))).toEqual([`${sleeper.pid}-live`]);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('committing a chainID that already exists keeps the existing one', async () => {
    const store = await SnapshotStore.open(dir);
    const id = sha256Digest('x');
    const one = await store.prepare(undefined);
    const two = await store.prepare(undefined);
    await writeFile(join(one.dir, 'which'), 'one');
    await writeFile(join(two.dir, 'which'), 'two');
    await one.commit({ chainId: id, parent: undefined, diffId: id, size: 0 });
    await two.commit({ chainId: id, parent: undefined, diffId: id, size: 0 });
    expect(await readFile(join(store.fsPath(id), 'which'), 'utf8')).toBe('one');
    expect(existsSync(join(dir, 'tmp')) && (await readdir(join(dir, 'tmp'))).length).toBe(0);
  });
});
