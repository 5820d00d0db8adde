// `pollen pull` of a busybox image from a real registry into a bundle that real runc starts.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTar, makeLayer } from '../helpers/images.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { busyboxLayer, pollenPull, pushImage, runcRun } from './snapshotter-helpers.ts';

describe('pollen pull + runc', () => {
  let registry: TestRegistry;
  let dir: string;
  let ref: string;

  beforeAll(async () => {
    registry = await TestRegistry.start();
    dir = await mkdtemp(join(tmpdir(), 'pollen-runc-'));
    const app = makeLayer(await buildTar([{ type: 'file', name: 'work/hello.txt', content: 'hello from the image\n', mode: 0o644, uid: 1000, gid: 1000 }]), 'gzip');
    ref = await pushImage(registry, join(dir, 'layout'), 'test/busybox', [await busyboxLayer(), app], {
      Env: ['PATH=/bin', 'GREETING=pollen-env'],
      WorkingDir: '/work',
      User: 'app',
      Cmd: ['sh', '-c', 'cat hello.txt; echo "env=$GREETING"; echo "cwd=$(pwd)"; id'],
    });
  });

  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts the image command with the config Env, WorkingDir and User', async () => {
    const bundle = join(dir, 'b1');
    await pollenPull(ref, join(dir, 'store'), bundle);
    const r = await runcRun(bundle);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('hello from the image');
    expect(r.stdout).toContain('env=pollen-env');
    expect(r.stdout).toContain('cwd=/work');
    expect(r.stdout).toMatch(/uid=1000\(app\) gid=1000\(app\) groups=.*50\(staff\)/);
  });

  it('replaces Cmd with the given arguments', async () => {
    const bundle = join(dir, 'b2');
    await pollenPull(ref, join(dir, 'store'), bundle, ['--', 'echo', 'override']);
    const r = await runcRun(bundle);
    expect(r.stdout.trim()).toBe('override');
  });

  // pid 1 becomes `sleep` (exec), which never reaps: an orphan that exits meanwhile stays a zombie
  // unless a real init is pid 1. An observer counts zombies while pid 1 still runs.
  const zombieScript = [
    'sh', '-c',
    'cat /proc/1/cmdline | tr "\\0" " "; echo; (sleep 0.6; echo "zombies=$(grep -l "^State:.*Z" /proc/[0-9]*/status 2>/dev/null | wc -l)") & (sh -c "sleep 0.1 &"); exec sleep 3',
  ];

  it('without --rich an orphaned child stays a zombie (the control for the rich test)', async () => {
    const bundle = join(dir, 'b3');
    await pollenPull(ref, join(dir, 'store'), bundle, ['--', ...zombieScript]);
    const r = await runcRun(bundle);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('zombies=1');
  });

  it('--rich makes tini pid 1, which reaps an orphaned zombie, and runs the hooks', async () => {
    const bundle = join(dir, 'b4');
    const marks = join(dir, 'hook-marks');
    await writeFile(marks, '');
    await pollenPull(ref, join(dir, 'store'), bundle, ['--rich', '--prestart-hook', `echo prestart >> ${marks}`, '--poststop-hook', `echo poststop >> ${marks}`, '--', ...zombieScript]);
    const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { args: string[] } };
    expect(config.process.args[0]).toBe('/.pollen-init');
    const r = await runcRun(bundle);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\/\.pollen-init -g -- sh -c/m);
    expect(r.stdout).toContain('zombies=0');
    expect((await readFile(marks, 'utf8')).split('\n').filter(Boolean)).toEqual(['prestart', 'poststop']);
  });
});
