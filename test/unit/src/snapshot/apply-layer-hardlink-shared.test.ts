// Two images share a base snapshot; the second one's layer holds hardlink entries to a base file
// that carry xattrs, a mode and an mtime. The base snapshot's file (and the first image's, which
// shares its inode) must be unchanged afterwards; in the second image the new name and the old one
// are one inode of its own, with the layer's xattrs.
import { execFile } from 'node:child_process';
import { lstat, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../../../../src/digest.ts';
import { chainIds } from '../../../../src/oci/image.ts';
import { applyLayer } from '../../../../src/snapshot/apply-layer.ts';
import { SnapshotStore } from '../../../../src/snapshot/snapshot-store.ts';
import { buildTar, type TarEntry } from '../../../helpers/images.ts';
import { requireTool } from '../../../helpers/tools.ts';

const run = promisify(execFile);
// vfs_cap_data v2: cap_net_raw in permitted, effective flag set.
const CAP_NET_RAW = '0x0100000200200000000000000000000000000000';
const capValue = Buffer.from(CAP_NET_RAW.slice(2), 'hex').toString('latin1');

async function xattrs(path: string): Promise<string> {
  const { stdout } = await run(requireTool('getfattr', 'attr'), ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', path]);
  return stdout.split('\n').filter((l) => l && !l.startsWith('#')).sort().join('\n');
}

async function look(path: string): Promise<Record<string, unknown>> {
  const st = await lstat(path);
  return { ino: st.ino, mode: st.mode, uid: st.uid, gid: st.gid, mtime: st.mtimeMs, size: st.size, content: await readFile(path, 'utf8'), xattrs: await xattrs(path) };
}

describe('hardlink entries and shared snapshots', () => {
  let dir: string;
  let store: SnapshotStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-hlshare-'));
    store = await SnapshotStore.open(dir);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** Applies layers on top of `parent`, committing each; returns the top chainID. */
  async function commitLayers(parent: Digest | undefined, parentDiffs: Digest[], layers: TarEntry[][]): Promise<Digest> {
    const diffs = [...parentDiffs];
    let top = parent;
    for (const entries of layers) {
      const active = await store.prepare(top);
      const r = await applyLayer(active.dir, Readable.from([await buildTar(entries)]));
      diffs.push(r.diffId);
      const id = chainIds(diffs).at(-1)!;
      await active.commit({ chainId: id, parent: top, diffId: r.diffId, size: r.fileBytes });
      top = id;
    }
    return top!;
  }

  it("a hardlink entry's xattrs, mode and mtime never reach the base snapshot's inode", async () => {
    const baseLayer: TarEntry[] = [
      { type: 'directory', name: 'bin/', mode: 0o755 },
      { type: 'file', name: 'bin/tool', content: 'tool', mode: 0o755, mtime: new Date('2020-01-01T00:00:00Z'), pax: { 'SCHILY.xattr.user.base': 'b' } },
    ];
    const base = await commitLayers(undefined, [], [baseLayer]);
    const baseDiff = (await store.stat(base))!.diffId;
    const imageA = await commitLayers(base, [baseDiff], [[{ type: 'file', name: 'a.txt', content: 'a' }]]);
    const baseTool = join(store.fsPath(base), 'bin/tool');
    const aTool = join(store.fsPath(imageA), 'bin/tool');
    const before = await look(baseTool);
    expect(await look(aTool)).toEqual(before); // A shares the base's inode

    const hostile = [
      { type: 'link', name: 'bin/tool2', linkname: 'bin/tool', mode: 0o4777, mtime: new Date('2030-01-01T00:00:00Z'), pax: { 'SCHILY.xattr.user.evil': 'e', 'SCHILY.xattr.security.capability': capValue } },
      { type: 'link', name: 'bin/tool', linkname: 'bin/tool', mode: 0o4777, pax: { 'SCHILY.xattr.user.self': 's' } },
    ] as unknown as TarEntry[];
    const imageB = await commitLayers(base, [baseDiff], [hostile]);

    expect(await look(baseTool)).toEqual(before);
    expect(await look(aTool)).toEqual(before);
    const b1 = await lstat(join(store.fsPath(imageB), 'bin/tool'));
    const b2 = await lstat(join(store.fsPath(imageB), 'bin/tool2'));
    expect(b2.ino).toBe(b1.ino);
    expect(b2.ino).not.toBe(before.ino);
    const bx = await xattrs(join(store.fsPath(imageB), 'bin/tool2'));
    expect(bx).toContain('user.evil=0x65');
    expect(bx).toContain('user.self=0x73');
    expect(bx).toContain('user.base=0x62'); // the copy-up kept what the base had
    expect(bx).toContain(`security.capability=${CAP_NET_RAW}`);
    expect(await readFile(join(store.fsPath(imageB), 'bin/tool2'), 'utf8')).toBe('tool');
  });

  it('a hardlink entry without metadata to apply shares the lower inode (no copy)', async () => {
    const base = await commitLayers(undefined, [], [[{ type: 'file', name: 'big', content: 'x'.repeat(1 << 16) }]]);
    const top = await commitLayers(base, [(await store.stat(base))!.diffId], [[{ type: 'link', name: 'big2', linkname: 'big' }]]);
    expect((await lstat(join(store.fsPath(top), 'big2'))).ino).toBe((await lstat(join(store.fsPath(base), 'big'))).ino);
  });
});
