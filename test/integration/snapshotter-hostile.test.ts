// `pollen pull` of hostile images from a real registry, as a user would run it:
// - under umask 000 the store, its snapshots and the bundle are 0700, a setuid binary inside the
//   rootfs stays setuid, and another local user (nobody) cannot reach any of it;
// - a 2 MB gzip bomb fails with ERR_LAYER_TOO_LARGE, commits nothing, and leaves the store small;
// - two images share a base snapshot and the second one's hardlink entry carries xattrs, a mode
//   and an mtime: the base snapshot's file is unchanged.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTar, makeLayer, sha256, type BuiltLayer, type TarEntry } from '../helpers/images.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { requireTool } from '../helpers/tools.ts';
import { gzipBomb } from './fixtures/hostile-layers.ts';
import { POLLEN_BIN, pushImage } from './snapshotter-helpers.ts';

const run = promisify(execFile);
const MIB = 1024 ** 2;

/** `pollen pull` under umask 000 (the most permissive a user can have). */
function pullUmask000(ref: string, root: string, bundle: string): Promise<{ stdout: string; stderr: string }> {
  return run('sh', ['-c', 'umask 000 && exec "$0" "$@"', process.execPath, POLLEN_BIN, 'pull', ref, '--bundle', bundle, '--root', root], { maxBuffer: 16 << 20 });
}

/** Runs `cmd` as nobody; resolves with its exit code. */
async function asNobody(...cmd: string[]): Promise<number> {
  return run(requireTool('runuser', 'util-linux'), ['-u', 'nobody', '--', ...cmd]).then(
    () => 0,
    (e: { code?: number }) => e.code ?? -1,
  );
}

async function duBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir, { recursive: true })) total += (await lstat(join(dir, name))).blocks * 512;
  return total;
}

async function fileState(path: string): Promise<Record<string, unknown>> {
  const st = await lstat(path);
  const { stdout } = await run(requireTool('getfattr', 'attr'), ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', path]);
  return { ino: st.ino, mode: st.mode, uid: st.uid, gid: st.gid, mtime: st.mtimeMs, size: st.size, xattrs: stdout.split('\n').filter((l) => l && !l.startsWith('#')).sort() };
}

describe('pollen pull of hostile images', () => {
  let registry: TestRegistry;
  let dir: string;

  beforeAll(async () => {
    registry = await TestRegistry.start();
    dir = await mkdtemp(join(tmpdir(), 'pollen-snaphostile-'));
    // Only Pollen's own modes may keep other users out: the scratch directory is open to all.
    await chmod(dir, 0o755);
  });

  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('under umask 000 the store and the bundle are 0700 and the setuid binary inside is out of other users reach', async () => {
    const layer = makeLayer(
      await buildTar([
        { type: 'directory', name: 'bin/', mode: 0o755 },
        { type: 'file', name: 'bin/su', content: 'setuid root', mode: 0o4755 },
        { type: 'directory', name: 'tmp/', mode: 0o1777 },
      ]),
      'gzip',
    );
    const ref = await pushImage(registry, join(dir, 'l-suid'), 'hostile/suid', [layer]);
    const root = join(dir, 'store-suid');
    const bundle = join(dir, 'bundle-suid');
    await pullUmask000(ref, root, bundle);
    const mode = async (p: string): Promise<number> => (await lstat(p)).mode & 0o7777;
    for (const d of [root, join(root, 'snapshots'), join(root, 'snapshots', layer.diffId.slice(7)), join(root, 'tmp'), join(root, 'bundles'), bundle]) expect(await mode(d), d).toBe(0o700);
    expect(await mode(join(bundle, 'rootfs', 'bin', 'su'))).toBe(0o4755);
    expect(await mode(join(bundle, 'rootfs', 'tmp'))).toBe(0o1777);
    // nobody can list the scratch directory, but nothing under the bundle or the store.
    expect(await asNobody('ls', dir)).toBe(0);
    expect(await asNobody('ls', join(bundle, 'rootfs', 'bin', 'su'))).not.toBe(0);
    expect(await asNobody('ls', join(root, 'snapshots'))).not.toBe(0);
  });

  it('a 2 MB gzip bomb fails with ERR_LAYER_TOO_LARGE, commits nothing and leaves the store small', async () => {
    const blob = gzipBomb();
    const bomb: BuiltLayer = {
      descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(blob), size: blob.length },
      diffId: sha256('the bomb is never hashed to the end'),
      blob,
    };
    const ref = await pushImage(registry, join(dir, 'l-bomb'), 'hostile/bomb', [bomb]);
    const root = join(dir, 'store-bomb');
    const bundle = join(dir, 'bundle-bomb');
    const err = (await run(process.execPath, [POLLEN_BIN, 'pull', ref, '--bundle', bundle, '--root', root]).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('ERR_LAYER_TOO_LARGE');
    expect(await readdir(join(root, 'snapshots'))).toEqual([]);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect(existsSync(join(bundle, 'config.json'))).toBe(false);
    expect(await duBytes(root)).toBeLessThan(8 * MIB); // the blob (2 MB) at most; the unpack was removed
  });

  it("a hardlink entry with xattrs, mode and mtime in one image leaves the base snapshot's file unchanged", async () => {
    const base = makeLayer(
      await buildTar([
        { type: 'directory', name: 'bin/', mode: 0o755 },
        { type: 'file', name: 'bin/tool', content: 'tool', mode: 0o755, mtime: new Date('2020-01-01T00:00:00Z'), pax: { 'SCHILY.xattr.user.base': 'b' } },
      ]),
      'gzip',
    );
    const plain = makeLayer(await buildTar([{ type: 'file', name: 'a.txt', content: 'a' }]), 'gzip');
    const hostileEntries = [
      { type: 'link', name: 'bin/tool2', linkname: 'bin/tool', mode: 0o4777, mtime: new Date('2030-01-01T00:00:00Z'), pax: { 'SCHILY.xattr.user.evil': 'e' } },
      { type: 'link', name: 'bin/tool', linkname: 'bin/tool', mode: 0o4777, pax: { 'SCHILY.xattr.user.self': 's' } },
    ] as unknown as TarEntry[];
    const hostile = makeLayer(await buildTar(hostileEntries), 'gzip');
    const root = join(dir, 'store-shared');
    await pullUmask000(await pushImage(registry, join(dir, 'l-a'), 'hostile/a', [base, plain]), root, join(dir, 'bundle-a'));
    const baseTool = join(root, 'snapshots', base.diffId.slice(7), 'fs', 'bin', 'tool');
    const before = await fileState(baseTool);
    expect(before.xattrs).toEqual(['user.base=0x62']);
    await pullUmask000(await pushImage(registry, join(dir, 'l-b'), 'hostile/b', [base, hostile]), root, join(dir, 'bundle-b'));
    expect(await fileState(baseTool)).toEqual(before);
    const b = await fileState(join(dir, 'bundle-b', 'rootfs', 'bin', 'tool2'));
    expect(b.xattrs).toEqual(['user.base=0x62', 'user.evil=0x65', 'user.self=0x73']);
  });
});
