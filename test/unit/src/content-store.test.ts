import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.ts';
import { digestHex, sha256Digest } from '../../../src/digest.ts';
import { FsContentStore } from '../../../src/fs-content-store.ts';
import { MemoryContentStore } from '../../../src/memory-content-store.ts';
import { ManagedStore } from '../../../src/store/managed-store.ts';
import { collectableStoreConformance, contentStoreConformance } from './content-store.conformance.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});
const fsStore = async (inline = true): Promise<FsContentStore> => {
  const dir = await mkdtemp(join(tmpdir(), 'pollen-cs-'));
  dirs.push(dir);
  return FsContentStore.open(dir, { inlineIo: { enabled: inline } });
};
const managed = async (inner: FsContentStore | MemoryContentStore): Promise<ManagedStore> => {
  // A quota far above what the suite writes: the managed store must keep the contract unchanged.
  const store = new ManagedStore({ store: inner, clock: systemClock }, { quota: { bytes: 1 << 30, label: '1 GiB' } });
  await store.start();
  return store;
};

contentStoreConformance('FsContentStore', () => fsStore());
// After a slow call (a cold read, a throttled write) the store's reads and writes go through the thread pool.
contentStoreConformance('FsContentStore through the thread pool', () => fsStore(false));
contentStoreConformance('MemoryContentStore', async () => new MemoryContentStore());
contentStoreConformance('ManagedStore over FsContentStore', async () => managed(await fsStore()));
contentStoreConformance('ManagedStore over MemoryContentStore', async () => managed(new MemoryContentStore()));
collectableStoreConformance('FsContentStore', () => fsStore());
collectableStoreConformance('MemoryContentStore', async () => new MemoryContentStore());

describe('FsContentStore: an ingest file it cannot remove', () => {
  // Aborting is how every failure path leaves an ingest (a bad digest, a failed download); an
  // ingest file that cannot be removed must neither hide that failure nor reject on its own.
  async function stuckIngest(digest: ReturnType<typeof sha256Digest>) {
    const store = await fsStore();
    const ingest = await store.openIngest(digest);
    await ingest.writeAt(Buffer.from('not what the digest names'), 0);
    // In the file's place, a non-empty directory: rm(path, { force: true }) fails on it, as root too.
    const path = join(store.root, 'ingest', digestHex(digest));
    await rm(path);
    await mkdir(path);
    await writeFile(join(path, 'x'), 'x');
    return { store, ingest, path };
  }

  it('abort resolves, and the file stays where it was', async () => {
    const { ingest, path } = await stuckIngest(sha256Digest('abort'));
    await expect(ingest.abort()).resolves.toBeUndefined();
    expect(await readdir(path)).toEqual(['x']);
  });

  it('a failed verify still rejects with the digest mismatch', async () => {
    const { ingest } = await stuckIngest(sha256Digest('verify'));
    await expect(ingest.verify()).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
  });
});
