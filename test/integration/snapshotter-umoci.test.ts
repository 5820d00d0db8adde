// A corpus of generated images covering every layer rule; Pollen's rootfs must equal umoci's for
// the same image, compared by a tree walk (types, modes, owners, symlink targets, hardlink
// groups, contents, file mtimes, device numbers, user xattrs).
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsContentStore } from '../../src/fs-content-store.ts';
import { MediaType } from '../../src/oci/media-types.ts';
import { RegistryClient } from '../../src/oci/registry-client.ts';
import { pullImage } from '../../src/snapshot/image-puller.ts';
import { SnapshotStore } from '../../src/snapshot/snapshot-store.ts';
import { buildTar, makeLayer, OciLayout, sha256, type BuiltLayer, type TarEntry } from '../helpers/images.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { requireTool } from '../helpers/tools.ts';
import { umociUnpack, walkTree } from './snapshotter-helpers.ts';

const T1 = new Date('2023-03-04T05:06:07Z');
const T2 = new Date('2022-01-02T03:04:05Z');
const LONG = `deep/${'a'.repeat(120)}/file-with-a-long-name-${'b'.repeat(90)}.txt`;

const base: TarEntry[] = [
  { type: 'directory', name: 'etc/', mode: 0o755 },
  { type: 'file', name: 'etc/hostname', content: 'base\n', mode: 0o644, mtime: T1 },
  { type: 'file', name: 'etc/motd', content: 'old motd\n', mode: 0o644 },
  { type: 'directory', name: 'usr/', mode: 0o755 },
  { type: 'directory', name: 'usr/bin/', mode: 0o755 },
  { type: 'file', name: 'usr/bin/tool', content: 'suid tool', mode: 0o4755, mtime: T2 },
  { type: 'file', name: 'usr/bin/sgid', content: 'sgid tool', mode: 0o2711, gid: 50 },
  { type: 'link', name: 'usr/bin/tool-link', linkname: 'usr/bin/tool' },
  { type: 'directory', name: 'tmp/', mode: 0o1777 },
  { type: 'directory', name: 'home/', mode: 0o755 },
  { type: 'directory', name: 'home/user/', mode: 0o700, uid: 1000, gid: 1000 },
  { type: 'file', name: 'home/user/.profile', content: 'export A=1\n', mode: 0o600, uid: 1000, gid: 1000 },
  { type: 'directory', name: 'bin/', mode: 0o755 },
  { type: 'symlink', name: 'bin/abs', linkname: '/usr/bin/tool' },
  { type: 'symlink', name: 'bin/rel', linkname: '../usr/bin/tool', uid: 1000, gid: 1000 },
  { type: 'symlink', name: 'bin/dangling', linkname: '/does/not/exist' },
  { type: 'file', name: 'data/keep/a.txt', content: 'a', mode: 0o644 },
  { type: 'file', name: 'data/gone.txt', content: 'gone', mode: 0o644 },
  { type: 'file', name: 'data/dir-to-file/x', content: 'x', mode: 0o644 },
  { type: 'file', name: 'data/file-to-dir', content: 'file', mode: 0o644 },
  { type: 'file', name: 'data/opq/old1', content: 'old1', mode: 0o644 },
  { type: 'file', name: 'data/opq/sub/old2', content: 'old2', mode: 0o644 },
  { type: 'file', name: LONG, content: 'long name', mode: 0o640, uid: 7, gid: 8 },
  { type: 'file', name: 'xattr/file', content: 'with xattr', mode: 0o644, pax: { 'SCHILY.xattr.user.pollen': 'hello' } },
  { type: 'directory', name: 'dev/', mode: 0o755 },
  { type: 'character-device', name: 'dev/null2', devmajor: 1, devminor: 3, mode: 0o666 },
  { type: 'fifo', name: 'dev/fifo', mode: 0o600 },
];

const change: TarEntry[] = [
  { type: 'file', name: 'data/.wh.gone.txt', content: '' },
  { type: 'file', name: 'data/dir-to-file', content: 'now a file', mode: 0o600 },
  { type: 'directory', name: 'data/file-to-dir/', mode: 0o750 },
  { type: 'file', name: 'data/file-to-dir/inner', content: 'inner', mode: 0o644 },
  // New entries of this layer before the opaque marker: they must survive it.
  { type: 'directory', name: 'data/opq/', mode: 0o755 },
  { type: 'file', name: 'data/opq/new1', content: 'new1', mode: 0o644 },
  { type: 'file', name: 'data/opq/.wh..wh..opq', content: '' },
  { type: 'link', name: 'data/link-to-lower', linkname: 'etc/hostname' },
  { type: 'file', name: 'data/h1', content: 'h', mode: 0o644 },
  { type: 'link', name: 'data/h2', linkname: 'data/h1' },
  { type: 'file', name: 'etc/motd', content: 'new motd\n', mode: 0o644, mtime: T2 },
  { type: 'file', name: 'home/user/.wh..profile', content: '' },
  { type: 'directory', name: 'home/user/', mode: 0o750, uid: 1000, gid: 1000 },
  { type: 'symlink', name: 'bin/abs', linkname: '/etc/motd' },
];

const top: TarEntry[] = [
  { type: 'file', name: 'app/run.sh', content: '#!/bin/sh\necho hi\n', mode: 0o755, uid: 1000 },
  { type: 'file', name: 'data/keep/.wh.a.txt', content: '' },
  { type: 'file', name: 'data/keep/b.txt', content: 'b', mode: 0o644 },
];

function zstdLayer(tar: Buffer): BuiltLayer {
  const blob = execFileSync(requireTool('zstd', 'zstd'), ['-q', '-c', '-3'], { input: tar, maxBuffer: 64 << 20 });
  return { descriptor: { mediaType: MediaType.OciLayerZstd, digest: sha256(blob), size: blob.length }, diffId: sha256(tar), blob };
}

describe('pollen rootfs equals umoci rootfs', () => {
  let registry: TestRegistry;
  let dir: string;
  let tars: Buffer[];
  let snapshots: SnapshotStore;
  let content: FsContentStore;
  let umociTree: Awaited<ReturnType<typeof walkTree>>;

  beforeAll(async () => {
    registry = await TestRegistry.start();
    dir = await mkdtemp(join(tmpdir(), 'pollen-umoci-'));
    tars = [await buildTar(base), await buildTar(change), await buildTar(top)];
    // The reference: gzip, gzip, plain tar (OCI media types), unpacked by umoci.
    const layout = new OciLayout(join(dir, 'oci'));
    layout.tag(layout.addImage([makeLayer(tars[0]!, 'gzip'), makeLayer(tars[1]!, 'gzip'), makeLayer(tars[2]!, 'none')], { config: { Cmd: ['/app/run.sh'] } }), 'latest');
    await layout.save();
    await registry.push(join(dir, 'oci'), 'latest', 'corpus/oci:latest');
    await registry.push(join(dir, 'oci'), 'latest', 'corpus/docker:latest', { format: 'v2s2' });
    const zlayout = new OciLayout(join(dir, 'zstd'));
    zlayout.tag(zlayout.addImage(tars.map(zstdLayer), { config: { Cmd: ['/app/run.sh'] } }), 'latest');
    await zlayout.save();
    await registry.push(join(dir, 'zstd'), 'latest', 'corpus/zstd:latest');
    umociTree = await walkTree(await umociUnpack(join(dir, 'oci'), 'latest', join(dir, 'umoci-bundle')));
  });

  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function pull(name: string, bundle: string, storeDir = join(dir, `store-${name.replace('/', '-')}`)) {
    snapshots = await SnapshotStore.open(storeDir);
    content = await FsContentStore.open(join(storeDir, 'content'));
    const client = new RegistryClient({}, { baseUrl: registry.url });
    return pullImage({ client, snapshots, content }, { name, reference: 'latest', platform: { os: 'linux', architecture: 'amd64' }, bundleDir: bundle, imageName: name });
  }

  it('umoci reference tree holds what the corpus is about (sanity of the corpus)', () => {
    const e = umociTree.entries;
    expect(e['data/gone.txt']).toBeUndefined();
    expect(e['data/opq/old1']).toBeUndefined();
    expect(e['data/opq/new1']?.type).toBe('file');
    expect(e['data/dir-to-file']?.type).toBe('file');
    expect(e['usr/bin/tool']?.mode).toBe(0o4755);
    expect(e['dev/null2']?.type).toBe('char');
    expect(e['xattr/file']?.xattrs).toBe('user.pollen="hello"');
    expect(umociTree.hardlinks).toContainEqual(['data/h1', 'data/h2']);
  });

  it('OCI media types (gzip and plain tar layers)', async () => {
    const r = await pull('corpus/oci', join(dir, 'b-oci'));
    expect(r.warnings).toEqual([]);
    expect(await walkTree(join(dir, 'b-oci', 'rootfs'))).toEqual(umociTree);
  });

  it('Docker schema 2 media types', async () => {
    await pull('corpus/docker', join(dir, 'b-docker'));
    expect(await walkTree(join(dir, 'b-docker', 'rootfs'))).toEqual(umociTree);
  });

  it('zstd layers', async () => {
    await pull('corpus/zstd', join(dir, 'b-zstd'));
    expect(await walkTree(join(dir, 'b-zstd', 'rootfs'))).toEqual(umociTree);
  });

  it('a second image sharing the base layers reuses their snapshots and unpacks only the rest', async () => {
    const storeDir = join(dir, 'store-shared');
    const first = await pull('corpus/oci', join(dir, 'b-s1'), storeDir);
    expect(first.layersUnpacked).toBe(3);
    const layout = new OciLayout(join(dir, 'oci2'));
    const extra = makeLayer(await buildTar([{ type: 'file', name: 'extra.txt', content: 'extra' }]), 'gzip');
    layout.tag(layout.addImage([makeLayer(tars[0]!, 'gzip'), makeLayer(tars[1]!, 'gzip'), extra]), 'latest');
    await layout.save();
    await registry.push(join(dir, 'oci2'), 'latest', 'corpus/second:latest');
    const second = await pull('corpus/second', join(dir, 'b-s2'), storeDir);
    expect(second).toMatchObject({ layersReused: 2, layersUnpacked: 1 });
    expect((await snapshots.list()).length).toBe(4);
    // The first bundle is unchanged by the second's unpack (snapshots share inodes with parents).
    expect(await walkTree(join(dir, 'b-s1', 'rootfs'))).toEqual(umociTree);
    const tree = await walkTree(join(dir, 'b-s2', 'rootfs'));
    expect(tree.entries['extra.txt']?.type).toBe('file');
    expect(tree.entries['app/run.sh']).toBeUndefined();
    expect(await readdir(join(storeDir, 'tmp'))).toEqual([]);
  });
});
