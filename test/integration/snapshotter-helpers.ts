// Shared by the snapshotter integration tests: a busybox-based image (Debian's busybox-static),
// pushing generated images to the real registry, running `pollen pull` and `runc run`.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { buildTar, makeLayer, OciLayout, type BuiltLayer, type TarEntry } from '../helpers/images.ts';
import type { TestRegistry } from '../helpers/registry.ts';
import { requireTool } from '../helpers/tools.ts';

const run = promisify(execFile);
export const POLLEN_BIN = resolve(import.meta.dirname, '../../bin/pollen.js');

export const BUSYBOX_APPLETS = ['sh', 'echo', 'id', 'pwd', 'env', 'sleep', 'ps', 'cat', 'ls', 'true', 'kill', 'grep', 'wc'];

/** A layer with /bin/busybox, applet symlinks, and /etc/passwd + /etc/group with an `app` user. */
export async function busyboxLayer(): Promise<BuiltLayer> {
  const busybox = await readFile(requireTool('busybox', 'busybox-static'));
  const entries: TarEntry[] = [
    { type: 'directory', name: 'bin/', mode: 0o755 },
    { type: 'file', name: 'bin/busybox', content: busybox, mode: 0o755 },
    ...BUSYBOX_APPLETS.map((a): TarEntry => ({ type: 'symlink', name: `bin/${a}`, linkname: 'busybox' })),
    { type: 'directory', name: 'etc/', mode: 0o755 },
    { type: 'file', name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n', mode: 0o644 },
    { type: 'file', name: 'etc/group', content: 'root:x:0:\napp:x:1000:\nstaff:x:50:app\n', mode: 0o644 },
    { type: 'directory', name: 'work/', mode: 0o777 },
    { type: 'directory', name: 'tmp/', mode: 0o1777 },
  ];
  return makeLayer(await buildTar(entries), 'gzip');
}

/** Pushes an image of these layers and config to the registry as `name:tag`. */
export async function pushImage(registry: TestRegistry, dir: string, name: string, layers: readonly BuiltLayer[], config: Record<string, unknown> = {}): Promise<string> {
  const layout = new OciLayout(dir);
  layout.tag(layout.addImage(layers, { config }), 'latest');
  await layout.save();
  await registry.push(dir, 'latest', `${name}:latest`);
  return `${registry.host}/${name}:latest`;
}

export async function pollenPull(ref: string, root: string, bundle: string, extra: string[] = []): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [POLLEN_BIN, 'pull', ref, '--bundle', bundle, '--root', root, ...extra], { maxBuffer: 16 << 20 });
}

/** `runc run` of a bundle with a unique container id; deleted afterwards whatever happens. */
export async function runcRun(bundle: string, timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const runc = requireTool('runc', 'runc');
  const id = `pollen-test-${randomBytes(6).toString('hex')}`;
  const stateRoot = join(bundle, '..', `runc-state-${id}`);
  try {
    const r = await run(runc, ['--root', stateRoot, 'run', '--bundle', bundle, id], { timeout: timeoutMs, maxBuffer: 16 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  } finally {
    await run(runc, ['--root', stateRoot, 'delete', '--force', id]).catch(() => {});
  }
}

export interface TreeEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  link?: string;
  sha?: string;
  mtime?: number;
  rdev?: number;
  xattrs?: string;
}

/**
 * A rootfs as comparable data: every path with type, mode, owner, symlink target, content hash,
 * device number, user xattrs and (for non-directories) mtime; plus hardlink groups by inode.
 */
export async function walkTree(root: string): Promise<{ entries: Record<string, TreeEntry>; hardlinks: string[][] }> {
  const { lstat, readdir, readlink } = await import('node:fs/promises');
  const { createHash } = await import('node:crypto');
  const entries: Record<string, TreeEntry> = {};
  const inodes = new Map<number, string[]>();
  const getfattr = requireTool('getfattr', 'attr');
  const visit = async (rel: string): Promise<void> => {
    const path = rel ? join(root, rel) : root;
    const st = await lstat(path);
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other';
    if (rel) {
      const e: TreeEntry = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (type === 'symlink') e.link = await readlink(path);
      if (type === 'file') e.sha = createHash('sha256').update(await readFile(path)).digest('hex');
      if (type !== 'dir') e.mtime = Math.floor(st.mtimeMs / 1000);
      if (type === 'char' || type === 'block') e.rdev = st.rdev;
      if (type !== 'symlink') {
        const x = await run(getfattr, ['-h', '-d', '-m', '^user\\.', '--absolute-names', path]).catch(() => ({ stdout: '' }));
        const lines = x.stdout.split('\n').filter((l) => l.startsWith('user.'));
        if (lines.length) e.xattrs = lines.sort().join(';');
      }
      entries[rel] = e;
      if (type !== 'dir') inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), rel]);
    }
    if (type === 'dir') for (const name of (await readdir(path)).sort()) await visit(rel ? `${rel}/${name}` : name);
  };
  await visit('');
  const hardlinks = [...inodes.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort((a, b) => a[0]!.localeCompare(b[0]!));
  return { entries, hardlinks };
}

/** `umoci unpack` of an OCI layout's tag into a fresh bundle; returns its rootfs. */
export async function umociUnpack(layoutDir: string, tag: string, bundle: string): Promise<string> {
  await run(requireTool('umoci', 'umoci'), ['unpack', '--image', `${layoutDir}:${tag}`, bundle], { maxBuffer: 16 << 20 });
  return join(bundle, 'rootfs');
}
