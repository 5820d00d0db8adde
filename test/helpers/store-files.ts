// What a content store at `<data>/<store>` holds on disk, as its quota counts it: the sizes of its
// blob files and ingest files (shared by the peer's and the seed's GC tests).
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Bytes of a store's blobs and ingests (`store`: `content` for a peer, `seed` for a supernode). */
export async function storeBytes(data: string, store: 'content' | 'seed'): Promise<number> {
  let total = 0;
  for (const sub of [`${store}/blobs/sha256`, `${store}/ingest`]) {
    const dir = join(data, sub);
    for (const name of await readdir(dir).catch(() => [])) total += (await stat(join(dir, name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/** Whether the store holds the whole blob `digest`. */
export function storeHasBlob(data: string, store: 'content' | 'seed', digest: string): boolean {
  return existsSync(join(data, store, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}
