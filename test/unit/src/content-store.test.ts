import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { systemClock } from '../../../src/clock.ts';
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
