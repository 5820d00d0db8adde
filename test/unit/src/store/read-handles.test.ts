// Read handles of committed blobs kept between reads: one open per file, closed when idle, over the
// cap, or forgotten (before a delete), never under a read in progress; a failed open is not kept.
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Digest } from '../../../../src/digest.ts';
import { isPollenError } from '../../../../src/errors.ts';
import { FsContentStore } from '../../../../src/fs-content-store.ts';
import { ReadHandles } from '../../../../src/store/read-handles.ts';

const dirs: string[] = [];
const handles: ReadHandles[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) h.closeAll();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'pollen-handles-'));
  dirs.push(d);
  return d;
}

function newHandles(options: { idleMs?: number; max?: number } = {}): ReadHandles {
  const h = new ReadHandles(options);
  handles.push(h);
  return h;
}

/** The file descriptors this process holds open on `path`. */
function fdsOn(path: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

async function readAll(h: ReadHandles, path: string, length: number): Promise<string> {
  return h.use(path, async (fh) => {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, 0);
    return buf.toString();
  });
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('ReadHandles', () => {
  it('opens a file once for many reads, and closes it once idle', async () => {
    const path = join(await tempDir(), 'a');
    await writeFile(path, 'hello');
    const h = newHandles({ idleMs: 50 });
    expect(await Promise.all([readAll(h, path, 5), readAll(h, path, 5), readAll(h, path, 5)])).toEqual(['hello', 'hello', 'hello']);
    expect(fdsOn(path)).toBe(1);
    expect(h.size).toBe(1);
    await settle(200);
    expect(h.size).toBe(0);
    expect(fdsOn(path)).toBe(0);
  });

  it('forgetting closes the handle after the read in progress, not under it', async () => {
    const path = join(await tempDir(), 'a');
    await writeFile(path, 'hello');
    const h = newHandles();
    let release!: () => void;
    const held = h.use(path, async (fh) => {
      await new Promise<void>((r) => (release = r));
      const buf = Buffer.alloc(5);
      await fh.read(buf, 0, 5, 0);
      return buf.toString();
    });
    await settle(20);
    h.forget(path);
    expect(h.size).toBe(0);
    await unlink(path);
    release();
    expect(await held).toBe('hello');
    await settle(20);
    expect(fdsOn(path + ' (deleted)') + fdsOn(path)).toBe(0);
    // Forgotten: the next read opens again and sees the file gone.
    await expect(readAll(h, path, 5)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('does not keep a failed open', async () => {
    const path = join(await tempDir(), 'late');
    const h = newHandles();
    await expect(readAll(h, path, 4)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(h.size).toBe(0);
    await writeFile(path, 'here');
    expect(await readAll(h, path, 4)).toBe('here');
  });

  it('keeps at most `max` handles, closing the least recently used idle ones', async () => {
    const dir = await tempDir();
    const h = newHandles({ max: 2 });
    const paths = ['a', 'b', 'c', 'd'].map((n) => join(dir, n));
    for (const p of paths) await writeFile(p, p.slice(-1));
    for (const p of paths) expect(await readAll(h, p, 1)).toBe(p.slice(-1));
    await settle(20);
    expect(h.size).toBe(2);
    expect(paths.map(fdsOn)).toEqual([0, 0, 1, 1]);
  });
  it('a handle opened while the others are all being read is kept, not closed as the idle one over the cap', async () => {
    const dir = await tempDir();
    const [a, b] = ['a', 'b'].map((n) => join(dir, n));
    await writeFile(a!, 'a');
    await writeFile(b!, 'b');
    const h = newHandles({ max: 1 });
    let release!: () => void;
    const held = h.use(a!, () => new Promise<void>((r) => (release = r)));
    await settle(20);
    expect(await readAll(h, b!, 1)).toBe('b');
    expect(fdsOn(b!)).toBe(1);
    release();
    await held;
  });
});

describe('FsContentStore reads through kept handles', () => {
  it('a deleted blob is unknown to readInto at once, and a re-committed one reads again', async () => {
    const store = await FsContentStore.open(await tempDir());
    const data = Buffer.from('layer bytes');
    const digest = sha256Digest(data);
    const commit = async (): Promise<void> => {
      const ingest = await store.openIngest(digest, { expectedSize: data.length });
      await ingest.writeAt(data, 0);
      await ingest.commit(data.length);
    };
    await commit();
    const target = Buffer.alloc(5);
    await store.readInto(digest, target, 6);
    expect(target.toString()).toBe('bytes');
    expect(fdsOn(store.blobPath(digest))).toBe(1);
    expect(await store.delete(digest)).toBe(true);
    await settle(20);
    expect(fdsOn(store.blobPath(digest)) + fdsOn(`${store.blobPath(digest)} (deleted)`)).toBe(0);
    const err = await store.readInto(digest, target, 0).then(() => undefined, (e: unknown) => e);
    expect(isPollenError(err) && err.code).toBe('ERR_BLOB_UNKNOWN');
    await commit();
    await store.readInto(digest, target, 0);
    expect(target.toString()).toBe('layer');
    await store.close();
    await settle(20);
    expect(fdsOn(store.blobPath(digest))).toBe(0);
  });
});
