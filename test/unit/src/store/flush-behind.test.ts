// A blob's pages go to disk while it is written: one flush at a time, every FLUSH_BEHIND_BYTES, a
// failed flush failing the commit (the kernel reports a failed writeback once). The store's own
// ingest is checked on the real file system: the kernel's extent map (`filefrag -v`, FIEMAP) marks
// pages not yet written back as delayed allocation.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { digestHex, sha256Digest } from '../../../../src/digest.ts';
import { FsContentStore } from '../../../../src/fs-content-store.ts';
import { FLUSH_BEHIND_BYTES, FlushBehind } from '../../../../src/store/flush-behind.ts';

class FakeFile {
  calls = 0;
  private pending: { resolve: () => void; reject: (err: Error) => void } | undefined;
  datasync(): Promise<void> {
    this.calls++;
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
    });
  }
  finish(err?: Error): void {
    const p = this.pending;
    this.pending = undefined;
    if (err) p?.reject(err);
    else p?.resolve();
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('FlushBehind', () => {
  it('flushes once every N bytes written, one flush at a time', async () => {
    const file = new FakeFile();
    const flush = new FlushBehind(file, 100);
    flush.wrote(60);
    expect(file.calls).toBe(0);
    flush.wrote(60);
    expect(file.calls).toBe(1);
    // Written while that flush runs: the next starts when it is done, with no write to prompt it.
    flush.wrote(500);
    expect(file.calls).toBe(1);
    file.finish();
    await tick();
    expect(file.calls).toBe(2);
    flush.wrote(99);
    file.finish();
    await tick();
    expect(file.calls).toBe(2);
    flush.wrote(1);
    expect(file.calls).toBe(3);
    file.finish();
    await flush.settled();
  });

  it('settled waits for the flush under way', async () => {
    const file = new FakeFile();
    const flush = new FlushBehind(file, 10);
    flush.wrote(10);
    let done = false;
    const settled = flush.settled().then(() => {
      done = true;
    });
    await tick();
    expect(done).toBe(false);
    file.finish();
    await settled;
    expect(done).toBe(true);
  });

  it('keeps a failed flush for the commit, and flushes no more', async () => {
    const file = new FakeFile();
    const flush = new FlushBehind(file, 10);
    flush.wrote(10);
    file.finish(new Error('EIO: i/o error, fdatasync'));
    await expect(flush.settled()).rejects.toThrow(/EIO/);
    flush.wrote(100);
    expect(file.calls).toBe(1);
    await expect(flush.settled()).rejects.toThrow(/EIO/);
  });
});

describe('FsContentStore ingest on disk', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  /** Bytes of the file's extents that are still delayed allocation (dirty, never written back). */
  function delallocBytes(path: string): number {
    const out = execFileSync('filefrag', ['-v', '-b4096', path], { encoding: 'utf8' });
    let blocks = 0;
    for (const line of out.split('\n')) {
      const m = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):.*delalloc/.exec(line);
      if (m) blocks += Number(m[2]) - Number(m[1]) + 1;
    }
    return blocks * 4096;
  }

  it('writes an ingest\'s pages back as it grows, not all at its commit', async () => {
    const root = await mkdtemp(join(tmpdir(), 'pollen-flush-'));
    dirs.push(root);
    const fsType = execFileSync('stat', ['-f', '-c', '%T', root], { encoding: 'utf8' }).trim();
    // FIEMAP's delalloc flag is what ext4 (and xfs) report; the check means nothing elsewhere.
    expect(['ext2/ext3', 'xfs'], `the test needs ${root} on ext4 or xfs, not ${fsType}`).toContain(fsType);
    const store = await FsContentStore.open(root);
    const blob = Buffer.alloc(5 * FLUSH_BEHIND_BYTES, 7);
    for (let i = 0; i < blob.length; i += 4096) blob.writeUInt32BE(i, i);
    const digest = sha256Digest(blob);
    const ingest = await store.openIngest(digest);
    const chunk = 1024 * 1024;
    // Written back to front, as pieces land out of order.
    for (let off = blob.length - chunk; off >= 0; off -= chunk) await ingest.writeAt(blob.subarray(off, off + chunk), off);
    const path = join(root, 'ingest', digestHex(digest));
    // The flushes run in the thread pool, one at a time, the next as soon as the last is done: what
    // none took (less than FLUSH_BEHIND_BYTES) stays dirty until the commit. Without them all
    // 40 MiB would, for 30 s (vm.dirty_expire_centisecs).
    let dirty = delallocBytes(path);
    for (let i = 0; i < 100 && dirty >= FLUSH_BEHIND_BYTES; i++) {
      await new Promise((r) => setTimeout(r, 50));
      dirty = delallocBytes(path);
    }
    expect(dirty).toBeLessThan(FLUSH_BEHIND_BYTES);
    const info = await ingest.commit(blob.length);
    expect(info.size).toBe(blob.length);
    expect(delallocBytes(join(root, 'blobs', 'sha256', digestHex(digest)))).toBe(0);
    await store.close();
  });
});
