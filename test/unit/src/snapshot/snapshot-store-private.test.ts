// Stores and bundles are private to Pollen's user (0700, as containerd's snapshot roots and
// bundles are), whatever the umask and whether the directories existed before; the rootfs inside
// keeps the image's own modes (a setuid binary stays setuid, reachable only through 0700 parents).
import { chmod, lstat, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Digest } from '../../../../src/digest.ts';
import { isPollenError } from '../../../../src/errors.ts';
import { parseImageConfig } from '../../../../src/oci/image.ts';
import { applyLayer } from '../../../../src/snapshot/apply-layer.ts';
import { writeBundle } from '../../../../src/snapshot/bundle-writer.ts';
import { SnapshotStore } from '../../../../src/snapshot/snapshot-store.ts';
import { buildTar } from '../../../helpers/images.ts';

const mode = async (p: string): Promise<number> => (await lstat(p)).mode & 0o7777;

describe('private snapshot store and bundles', () => {
  let dir: string;
  let umask: number;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-private-'));
    umask = process.umask(0o000); // the most permissive umask a user can have
  });
  afterEach(async () => {
    process.umask(umask);
    await rm(dir, { recursive: true, force: true });
  });

  it('a new store, its directories and its snapshots are 0700 under umask 000', async () => {
    const root = join(dir, 'new', 'store');
    const store = await SnapshotStore.open(root);
    const a = await store.prepare(undefined);
    expect(await mode(join(a.dir, '..'))).toBe(0o700);
    const id = sha256Digest('a');
    await a.commit({ chainId: id, parent: undefined, diffId: id, size: 0 });
    for (const d of [root, join(root, 'snapshots'), join(root, 'tmp'), join(root, 'bundles'), join(root, 'snapshots', id.slice(7))]) expect(await mode(d), d).toBe(0o700);
  });

  it('existing world-readable store directories and snapshots become 0700 on open', async () => {
    const root = join(dir, 'old');
    const snap = join(root, 'snapshots', 'ab'.repeat(32));
    await mkdir(join(snap, 'fs'), { recursive: true, mode: 0o755 });
    for (const d of ['tmp', 'bundles']) await mkdir(join(root, d), { mode: 0o777 });
    await chmod(root, 0o777);
    await SnapshotStore.open(root);
    for (const d of [root, join(root, 'snapshots'), join(root, 'tmp'), join(root, 'bundles'), snap]) expect(await mode(d), d).toBe(0o700);
    expect(await mode(join(snap, 'fs'))).toBe(0o755); // a rootfs keeps its own mode
  });

  it('the bundle directory is 0700 (new or existing) and its rootfs keeps setuid and world-writable modes', async () => {
    const store = await SnapshotStore.open(join(dir, 'store'));
    const a = await store.prepare(undefined);
    const tar = await buildTar([
      { type: 'directory', name: 'bin/', mode: 0o755 },
      { type: 'file', name: 'bin/su', content: 'setuid', mode: 0o4755 },
      { type: 'directory', name: 'tmp/', mode: 0o1777 },
    ]);
    const r = await applyLayer(a.dir, Readable.from([tar]));
    const id = sha256Digest('suid');
    await a.commit({ chainId: id, parent: undefined, diffId: r.diffId, size: r.fileBytes });
    const image = parseImageConfig(Buffer.from(JSON.stringify({ config: { Cmd: ['/bin/su'] }, rootfs: { diff_ids: [] } })));
    const fresh = join(dir, 'bundles', 'fresh');
    const existing = join(dir, 'bundles', 'existing');
    await mkdir(existing, { recursive: true, mode: 0o755 });
    for (const bundle of [fresh, existing]) {
      await writeBundle({ snapshots: store }, { bundleDir: bundle, chainId: id, image, imageName: 'x', prestartHooks: [], poststopHooks: [] });
      expect(await mode(bundle)).toBe(0o700);
      expect(await mode(join(bundle, 'rootfs', 'bin', 'su'))).toBe(0o4755);
      expect(await mode(join(bundle, 'rootfs', 'tmp'))).toBe(0o1777);
    }
    expect(await mode(join(dir, 'bundles'))).toBe(0o755); // the caller's parent directory is left alone
  });

  it('a shared directory (sticky, like /tmp) is refused as a store or a bundle, and keeps its mode', async () => {
    const shared = join(dir, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o1777);
    const err = await SnapshotStore.open(shared).catch((e: unknown) => e);
    expect(isPollenError(err, 'ERR_INVALID_CONFIG')).toBe(true);
    const store = await SnapshotStore.open(join(dir, 'store'));
    const image = parseImageConfig(Buffer.from(JSON.stringify({ config: {}, rootfs: { diff_ids: [] } })));
    const err2 = await writeBundle({ snapshots: store }, { bundleDir: shared, chainId: sha256Digest('none'), image, imageName: 'x', prestartHooks: [], poststopHooks: [] }).catch((e: unknown) => e);
    expect(isPollenError(err2, 'ERR_INVALID_CONFIG')).toBe(true);
    expect(await mode(shared)).toBe(0o1777);
  });
});
