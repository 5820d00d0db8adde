import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsContentStore } from '../../../src/fs-content-store.ts';
import { MemoryContentStore } from '../../../src/memory-content-store.ts';
import { contentStoreConformance } from './content-store.conformance.ts';

contentStoreConformance('FsContentStore', async () => FsContentStore.open(await mkdtemp(join(tmpdir(), 'pollen-cs-'))));
contentStoreConformance('MemoryContentStore', async () => new MemoryContentStore());
