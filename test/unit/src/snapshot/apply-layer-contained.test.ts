// Property: whatever sequence of entries a layer holds (directories, files, symlinks to anywhere,
// hardlinks, whiteouts, the same names again, `..` and absolute names, xattrs, odd modes), applying
// it changes nothing outside its rootfs. The rootfs sits in BASE/o/i/ next to a canary tree, and
// every symlink target or absolute name the generator can make stays inside BASE, so even a broken
// applier could not reach the host's own files. The rootfs starts as a hardlink clone (`cp -al`, as
// the snapshot store prepares a child) of a parent snapshot BASE/o/i/parent, so its files share
// inodes with the parent. Afterwards everything under BASE but the rootfs (type, mode, owner, size,
// content, link target, mtime, ctime, link count, xattrs) is as before; in the parent only the
// link count and ctime of a file may change (the rootfs linking or unlinking a shared inode).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPollenError } from '../../../../src/errors.ts';
import { applyLayer } from '../../../../src/snapshot/apply-layer.ts';
import { buildTar, type TarEntry } from '../../../helpers/images.ts';
import { requireTool } from '../../../helpers/tools.ts';

const run = promisify(execFile);
const OLD = new Date('2001-01-01T00:00:00Z');
const NEW = new Date('2030-01-01T00:00:00Z');

/** Everything under `base` except `skip`, as comparable data (`shared`: files without nlink and ctime). */
async function tree(base: string, skip: string, shared: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const visit = async (path: string): Promise<void> => {
    const st = await lstat(path);
    const e: Record<string, unknown> = { mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, mtime: st.mtimeMs, ctime: st.ctimeMs, nlink: st.nlink, ino: st.ino };
    if (path.startsWith(`${shared}/`) && !st.isDirectory()) {
      delete e.ctime;
      delete e.nlink;
    }
    if (st.isSymbolicLink()) e.link = await readlink(path);
    if (st.isFile()) e.sha = createHash('sha256').update(await readFile(path)).digest('hex');
    out[path] = e;
    if (st.isDirectory()) for (const name of (await readdir(path)).sort()) if (join(path, name) !== skip) await visit(join(path, name));
  };
  await visit(base);
  const { stdout } = await run(requireTool('getfattr', 'attr'), ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', base], { maxBuffer: 16 << 20 });
  for (const section of stdout.split('\n\n')) {
    const [head, ...attrs] = section.trim().split('\n');
    const path = head?.replace(/^# file: /, '');
    if (path && path !== skip && !path.startsWith(`${skip}/`)) out[`xattrs:${path}`] = attrs.sort();
  }
  return out;
}

/**
 * BASE/o/canary-o, BASE/o/i/canary/{secret, sub/, lnk -> secret}, the parent snapshot
 * BASE/o/i/parent/{a, b/f, l -> a} and the rootfs BASE/o/i/rootfs, its hardlink clone.
 */
async function scratch(): Promise<{ base: string; inner: string; root: string; parent: string }> {
  const base = await mkdtemp(join(tmpdir(), 'pollen-contained-'));
  const outer = join(base, 'o');
  const inner = join(outer, 'i');
  const canary = join(inner, 'canary');
  await mkdir(join(canary, 'sub'), { recursive: true });
  await writeFile(join(outer, 'canary-o'), 'outer', { mode: 0o600 });
  await writeFile(join(canary, 'secret'), 'secret', { mode: 0o640 });
  await symlink('secret', join(canary, 'lnk'));
  await run(requireTool('setfattr', 'attr'), ['-n', 'user.canary', '-v', 'keep', join(canary, 'secret')]);
  await run(requireTool('setfattr', 'attr'), ['-n', 'user.canary', '-v', 'keep', join(canary, 'sub')]);
  const parent = join(inner, 'parent');
  await mkdir(join(parent, 'b'), { recursive: true });
  await writeFile(join(parent, 'a'), 'lower a', { mode: 0o755 });
  await writeFile(join(parent, 'b', 'f'), 'lower f', { mode: 0o644 });
  await symlink('a', join(parent, 'l'));
  await run(requireTool('setfattr', 'attr'), ['-n', 'user.lower', '-v', 'keep', join(parent, 'a')]);
  for (const p of [join(parent, 'a'), join(parent, 'b', 'f'), join(parent, 'b'), parent]) await utimes(p, OLD, OLD);
  await run('cp', ['-a', '-l', parent, join(inner, 'rootfs')]);
  for (const p of [join(canary, 'secret'), join(canary, 'sub'), canary, join(outer, 'canary-o'), inner, outer, base]) await utimes(p, OLD, OLD);
  return { base, inner, root: join(inner, 'rootfs'), parent };
}

/** Layers over a small alphabet of names, so names repeat and entries replace each other. */
function layerArb(base: string, inner: string): fc.Arbitrary<TarEntry[]> {
  const component = fc.constantFrom('a', 'b', 'c', 'f', 'l', 'canary', '..', '.', '.wh.a', '.wh.b', '.wh.canary', '.wh..wh..opq');
  const prefix = fc.constantFrom('', '', '', '../', '../../', '/', `${inner}/canary/`, `${base}/`);
  const name = fc.tuple(prefix, fc.array(component, { minLength: 1, maxLength: 3 })).map(([p, cs]) => p + cs.join('/'));
  // At most three levels up from a directory at most two deep: still inside BASE.
  const target = fc.oneof(
    name,
    fc.constantFrom('..', '../..', '../../..', '../canary', '../canary/sub', '../canary/secret', '.', '/', 'a', 'l', 'b/f', 'a/b', `${inner}/canary`, `${inner}/canary/sub`, `${inner}/canary/secret`, base, inner),
  );
  const mode = fc.constantFrom(0o755, 0o700, 0o644, 0o4755, 0o2755, 0o777, 0o1777, 0o000);
  const owner = fc.constantFrom(0, 1234);
  const pax = fc.option(fc.constant({ 'SCHILY.xattr.user.layer': 'x' }), { nil: undefined });
  const entry: fc.Arbitrary<TarEntry> = fc.oneof(
    fc.record({ type: fc.constant('directory' as const), name, mode, uid: owner, gid: owner, mtime: fc.constant(NEW), pax }),
    fc.record({ type: fc.constant('file' as const), name, content: fc.constantFrom('', 'pwned'), mode, uid: owner, gid: owner, mtime: fc.constant(NEW), pax }),
    fc.record({ type: fc.constant('symlink' as const), name, linkname: target, uid: owner, gid: owner, mtime: fc.constant(NEW) }),
    fc.record({ type: fc.constant('link' as const), name, linkname: target, mtime: fc.constant(NEW), pax }).map((e) => e as TarEntry),
    fc.record({ type: fc.constant('fifo' as const), name, mode, mtime: fc.constant(NEW) }),
  );
  return fc.array(entry, { minLength: 1, maxLength: 12 });
}

describe('a layer cannot change anything outside its rootfs', () => {
  // Generated names and targets say @BASE@; each run makes a fresh scratch tree and puts its path there.
  it('any sequence of entries leaves the canary tree and everything else outside the rootfs unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(layerArb('@BASE@', '@BASE@/o/i'), async (entries) => {
        const s = await scratch();
        try {
          const fix = (v: string): string => v.replaceAll('@BASE@', s.base);
          const layer = entries.map((e) => ({ ...e, name: fix(e.name), ...('linkname' in e ? { linkname: fix(e.linkname) } : {}) }) as TarEntry);
          const before = await tree(s.base, s.root, s.parent);
          const err = await applyLayer(s.root, Readable.from([await buildTar(layer)])).then(
            () => undefined,
            (e: unknown) => e,
          );
          // The only refusal: a hardlink whose target is not in the rootfs, or a path blocked by a file.
          if (err !== undefined && !isPollenError(err, 'ERR_LAYER_INVALID')) throw err;
          expect(await tree(s.base, s.root, s.parent)).toEqual(before);
        } finally {
          await rm(s.base, { recursive: true, force: true });
        }
      }),
      { numRuns: 100 },
    );
  }, 90_000);
});
