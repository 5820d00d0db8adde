// What a failed unpack leaves behind: a wrong diffID fails with a clear error and commits no
// snapshot for that layer; a killed `pollen pull` leaves no half snapshot visible afterwards.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPollenError } from '../../src/errors.ts';
import { FsContentStore } from '../../src/fs-content-store.ts';
import { chainIds } from '../../src/oci/image.ts';
import { RegistryClient } from '../../src/oci/registry-client.ts';
import { pullImage } from '../../src/snapshot/image-puller.ts';
import { SnapshotStore } from '../../src/snapshot/snapshot-store.ts';
import type { Digest } from '../../src/digest.ts';
import { buildTar, makeLayer, randomFileLayer, sha256 } from '../helpers/images.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { waitFor } from '../helpers/tools.ts';
import { POLLEN_BIN, pollenPull, pushImage } from './snapshotter-helpers.ts';

describe('snapshotter failures', () => {
  let registry: TestRegistry;
  let dir: string;

  beforeAll(async () => {
    registry = await TestRegistry.start();
    dir = await mkdtemp(join(tmpdir(), 'pollen-snapfail-'));
  });

  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a wrong diffID fails with ERR_DIFFID_MISMATCH and commits no snapshot for that layer', async () => {
    const good = makeLayer(await buildTar([{ type: 'file', name: 'a.txt', content: 'a' }]), 'gzip');
    const bad = makeLayer(await buildTar([{ type: 'file', name: 'b.txt', content: 'b' }]), 'gzip');
    const wrong = { ...bad, diffId: sha256('not the layer') };
    await pushImage(registry, join(dir, 'l1'), 'fail/diffid', [good, wrong]);
    const store = join(dir, 's1');
    const snapshots = await SnapshotStore.open(store);
    const content = await FsContentStore.open(join(store, 'content'));
    const client = new RegistryClient({}, { baseUrl: registry.url });
    const bundle = join(dir, 'b1');
    const err = await pullImage({ client, snapshots, content }, { name: 'fail/diffid', reference: 'latest', platform: { os: 'linux', architecture: 'amd64' }, bundleDir: bundle, imageName: 'x' }).catch((e: unknown) => e);
    expect(isPollenError(err, 'ERR_DIFFID_MISMATCH')).toBe(true);
    expect((err as Error).message).toContain(wrong.diffId);
    const ids = chainIds([good.diffId, wrong.diffId] as Digest[]);
    expect((await snapshots.list()).map((s) => s.chainId)).toEqual([ids[0]]);
    expect(await readdir(join(store, 'tmp'))).toEqual([]);
    expect(existsSync(join(bundle, 'config.json'))).toBe(false);
  });

  it('a pull killed mid-unpack leaves no half snapshot, and the next pull completes', async () => {
    const big = await randomFileLayer('killed-unpack', 32 << 20, 'gzip');
    const ref = await pushImage(registry, join(dir, 'l2'), 'fail/killed', [big]);
    const store = join(dir, 's2');
    const child = spawn(process.execPath, [POLLEN_BIN, 'pull', ref, '--bundle', join(dir, 'b2'), '--root', store], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    // Kill it as soon as the layer's file is being written inside an unfinished snapshot.
    await waitFor(async () => {
      for (const t of await readdir(join(store, 'tmp')).catch(() => [] as string[])) if (existsSync(join(store, 'tmp', t, 'fs', 'data', 'killed-unpack.bin'))) return true;
      return false;
    }, 'the unpack to start', 60_000);
    child.kill('SIGKILL');
    await exited;
    expect(await readdir(join(store, 'snapshots'))).toEqual([]);
    const snapshots = await SnapshotStore.open(store);
    expect(await snapshots.list()).toEqual([]);
    expect(await readdir(join(store, 'tmp'))).toEqual([]);
    await pollenPull(ref, store, join(dir, 'b3'));
    expect((await snapshots.list()).map((s) => s.chainId)).toEqual([big.diffId]);
  });
});
