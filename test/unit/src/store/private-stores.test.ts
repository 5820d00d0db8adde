// Stores are private to Pollen's user: the content store's and the level db's directories end up
// 0700 and blob files 0600, even under umask 000 and when the directories existed before as 0755.
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLevelKv } from '../../../../src/db.ts';
import { digestHex, sha256Digest } from '../../../../src/digest.ts';
import { FsContentStore } from '../../../../src/fs-content-store.ts';

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

describe('private stores', () => {
  let oldUmask: number;
  let dir: string;
  beforeEach(async () => {
    oldUmask = process.umask(0o000);
    dir = await mkdtemp(join(tmpdir(), 'pollen-private-'));
  });
  afterEach(async () => {
    process.umask(oldUmask);
    await rm(dir, { recursive: true, force: true });
  });

  it('tightens a pre-existing 0755 content store and its 0644 blobs, and writes new blobs 0600', async () => {
    const root = join(dir, 'content');
    const old = Buffer.from('a blob written by an older version');
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true, mode: 0o755 });
    await mkdir(join(root, 'ingest'), { mode: 0o755 });
    await writeFile(join(root, 'blobs', 'sha256', digestHex(sha256Digest(old))), old, { mode: 0o644 });
    await writeFile(join(root, 'ingest', digestHex(sha256Digest('partial'))), 'par', { mode: 0o666 });
    expect(await mode(root)).toBe(0o755);

    const store = await FsContentStore.open(root);
    for (const d of [root, join(root, 'blobs'), join(root, 'blobs', 'sha256'), join(root, 'ingest')]) expect(await mode(d), d).toBe(0o700);
    const fresh = Buffer.from('a blob written now, under umask 000');
    const ingest = await store.openIngest(sha256Digest(fresh));
    await ingest.writeAt(fresh, 0);
    expect(await mode(join(root, 'ingest', digestHex(sha256Digest(fresh))))).toBe(0o600);
    await ingest.commit();
    for (const sub of ['blobs/sha256', 'ingest']) {
      for (const name of await readdir(join(root, sub))) expect((await mode(join(root, sub, name))) & 0o077, `${sub}/${name}`).toBe(0);
    }
    expect(await mode(store.blobPath(sha256Digest(fresh)))).toBe(0o600);
    await store.close();
  });

  it('creates missing store directories 0700 under umask 000', async () => {
    const root = join(dir, 'a', 'b', 'content');
    await (await FsContentStore.open(root)).close();
    for (const d of [join(dir, 'a'), join(dir, 'a', 'b'), root, join(root, 'ingest')]) expect(await mode(d), d).toBe(0o700);
  });

  it('tightens the level db directory to 0700, new or pre-existing', async () => {
    const existing = join(dir, 'meta');
    await mkdir(existing, { mode: 0o755 });
    await chmod(existing, 0o755);
    const kv = await openLevelKv(existing);
    await kv.put('k', 1);
    await kv.close();
    expect(await mode(existing)).toBe(0o700);
    const created = join(dir, 'other-meta');
    await (await openLevelKv(created)).close();
    expect(await mode(created)).toBe(0o700);
  });
});
