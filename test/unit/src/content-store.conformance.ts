// The contract every ContentStore implementation must meet; run against each implementation.
import { randomBytes } from 'node:crypto';
import { buffer, text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import type { CollectableStore, ContentStore } from '../../../src/content-store.ts';
import { sha256Digest } from '../../../src/digest.ts';
import { isPollenError } from '../../../src/errors.ts';

export function contentStoreConformance(name: string, open: () => Promise<ContentStore>): void {
  describe(`ContentStore conformance: ${name}`, () => {
    const data = Buffer.from('hello pollen, this is a blob');
    const digest = sha256Digest(data);

    it('commits sequential writes and reads them back whole and by range', async () => {
      const store = await open();
      const ingest = await store.openIngest(digest);
      await ingest.writeAt(data.subarray(0, 10), 0);
      await ingest.writeAt(data.subarray(10), 10);
      expect(await store.stat(digest)).toBeUndefined();
      await ingest.commit(data.length);
      expect(await store.stat(digest)).toEqual({ digest, size: data.length });
      expect(await text(await store.read(digest))).toBe(data.toString());
      expect(await text(await store.read(digest, { start: 6, end: 11 }))).toBe('pollen');
      await store.close();
    });

    it('readInto fills a caller\'s buffer from a committed blob, and refuses an absent blob or a read past the end', async () => {
      const store = await open();
      await expect(store.readInto(digest, Buffer.alloc(4), 0)).rejects.toMatchObject({ code: 'ERR_BLOB_UNKNOWN' });
      const ingest = await store.openIngest(digest);
      await ingest.writeAt(data, 0);
      await ingest.commit(data.length);
      const target = Buffer.alloc(6);
      await store.readInto(digest, target, 6);
      expect(target.toString()).toBe('pollen');
      await expect(store.readInto(digest, Buffer.alloc(8), data.length - 4)).rejects.toMatchObject({ code: 'ERR_INTERNAL' });
      await store.close();
    });

    it('commits out-of-order writes after verifying the whole content', async () => {
      const store = await open();
      const ingest = await store.openIngest(digest);
      await ingest.writeAt(data.subarray(10), 10);
      await ingest.writeAt(data.subarray(0, 10), 0);
      await ingest.commit();
      expect((await store.stat(digest))?.size).toBe(data.length);
    });

    it('verifies a blob written piece by piece in shuffled order, concurrently, some pieces vectored', async () => {
      const store = await open();
      const blob = randomBytes(40 << 20);
      const blobDigest = sha256Digest(blob);
      const ingest = await store.openIngest(blobDigest);
      const piece = 1 << 20;
      const order = Array.from({ length: blob.length / piece }, (_, i) => i).reverse();
      [order[3], order[30]] = [order[30]!, order[3]!];
      await Promise.all(
        order.map((i) => {
          const p = blob.subarray(i * piece, (i + 1) * piece);
          return ingest.writeAt(i % 2 ? [p.subarray(0, 1000), p.subarray(1000)] : p, i * piece);
        }),
      );
      await ingest.commit(blob.length);
      expect((await store.stat(blobDigest))?.size).toBe(blob.length);
      await store.close();
    });

    it('keeps none of the caller\'s buffers once writeAt resolves: reusing them for the next pieces is safe', async () => {
      const store = await open();
      const blob = randomBytes(8 << 20);
      const blobDigest = sha256Digest(blob);
      const ingest = await store.openIngest(blobDigest);
      const piece = 1 << 20;
      const block = piece / 4;
      const buffers = Array.from({ length: 4 }, () => Buffer.alloc(block));
      // In order and out of order, as a downloader with one set of block buffers would write them.
      for (const i of [0, 5, 1, 7, 6, 2, 4, 3]) {
        for (let b = 0; b < 4; b++) blob.copy(buffers[b]!, 0, i * piece + b * block, i * piece + (b + 1) * block);
        await ingest.writeAt(buffers, i * piece);
        for (const buf of buffers) buf.fill(0xee);
      }
      await ingest.commit(blob.length);
      expect((await buffer(await store.read(blobDigest))).equals(blob)).toBe(true);
      await store.close();
    });

    it('catches a piece overwritten with other bytes, whether before or after the prefix reached it', async () => {
      const store = await open();
      const piece = 8;
      const bad = Buffer.alloc(piece, 0x21);
      for (const [when, expectOk] of [['before', false], ['after', false], ['misaligned', false], ['fixed', true]] as const) {
        const ingest = await store.openIngest(digest);
        if (when === 'before') {
          await ingest.writeAt(data.subarray(piece, 2 * piece), piece);
          await ingest.writeAt(bad, piece);
          await ingest.writeAt(data.subarray(0, piece), 0);
          await ingest.writeAt(data.subarray(2 * piece), 2 * piece);
        } else if (when === 'misaligned') {
          // Bytes 8-11 end up bad on disk while the good piece at 8 was handed over earlier.
          await ingest.writeAt(data.subarray(piece, 2 * piece), piece);
          await ingest.writeAt(bad, piece / 2);
          await ingest.writeAt(data.subarray(0, piece), 0);
          await ingest.writeAt(data.subarray(2 * piece), 2 * piece);
        } else if (when === 'after') {
          await ingest.writeAt(data, 0);
          await ingest.writeAt(bad, piece);
        } else {
          await ingest.writeAt(bad, piece);
          await ingest.writeAt(data.subarray(piece, 2 * piece), piece);
          await ingest.writeAt(data.subarray(0, piece), 0);
          await ingest.writeAt(data.subarray(2 * piece), 2 * piece);
        }
        if (expectOk) await ingest.commit(data.length);
        else await expect(ingest.commit(data.length)).rejects.toSatisfy((e) => isPollenError(e, 'ERR_DIGEST_MISMATCH'));
      }
      expect((await store.stat(digest))?.size).toBe(data.length);
      await store.close();
    });

    it('refuses a commit whose content does not match the digest, leaving nothing visible', async () => {
      const store = await open();
      const ingest = await store.openIngest(digest);
      const bad = Buffer.from(data);
      bad[3] = bad[3]! ^ 1;
      await ingest.writeAt(bad, 0);
      await expect(ingest.commit()).rejects.toSatisfy((e) => isPollenError(e, 'ERR_DIGEST_MISMATCH'));
      expect(await store.stat(digest)).toBeUndefined();
      await expect(store.read(digest)).rejects.toSatisfy((e) => isPollenError(e, 'ERR_BLOB_UNKNOWN'));
    });

    it('an ingest that forgoes its digest hashes the whole file at a commit not vouched, and a vouched one checks the size only', async () => {
      const store = await open();
      const piece = Math.floor(data.length / 3);
      const outOfOrder = async (bytes: Buffer) => {
        const ingest = await store.openIngest(digest);
        ingest.forgoDigest();
        await ingest.writeAt(bytes.subarray(piece), piece);
        await ingest.writeAt(bytes.subarray(0, piece), 0);
        return ingest;
      };
      const bad = Buffer.from(data);
      bad[piece + 1] = bad[piece + 1]! ^ 1;
      await expect((await outOfOrder(bad)).commit(data.length)).rejects.toSatisfy((e) => isPollenError(e, 'ERR_DIGEST_MISMATCH'));
      expect(await store.stat(digest)).toBeUndefined();
      // Vouched: the writer checked every piece (here it says so); a wrong size is still refused.
      await expect((await outOfOrder(data)).commit(data.length + 1, { vouched: true })).rejects.toSatisfy((e) => isPollenError(e, 'ERR_SIZE_MISMATCH'));
      await (await outOfOrder(data)).commit(data.length, { vouched: true });
      expect(Buffer.concat(await (await store.read(digest)).toArray())).toEqual(data);
      await store.delete(digest);
      await (await outOfOrder(data)).commit(data.length);
      expect((await store.stat(digest))?.size).toBe(data.length);
      await store.close();
    });

    it('refuses a commit of the wrong size', async () => {
      const store = await open();
      const ingest = await store.openIngest(digest);
      await ingest.writeAt(data, 0);
      await expect(ingest.commit(data.length + 1)).rejects.toSatisfy((e) => isPollenError(e, 'ERR_SIZE_MISMATCH'));
      expect(await store.stat(digest)).toBeUndefined();
    });

    it('treats committing a blob that already exists as success', async () => {
      const store = await open();
      for (let i = 0; i < 2; i++) {
        const ingest = await store.openIngest(digest);
        await ingest.writeAt(data, 0);
        await ingest.commit();
      }
      expect((await store.stat(digest))?.size).toBe(data.length);
    });

    it('resumes a suspended ingest with the bytes it held', async () => {
      const store = await open();
      const first = await store.openIngest(digest);
      await first.writeAt(data.subarray(0, 12), 0);
      await first.suspend();
      const second = await store.openIngest(digest, { resume: true });
      expect(second.resumedBytes).toBe(12);
      await second.writeAt(data.subarray(12), 12);
      await second.commit(data.length);
      expect(await text(await store.read(digest))).toBe(data.toString());
    });

    it('discards an aborted ingest and lists and deletes committed blobs', async () => {
      const store = await open();
      const aborted = await store.openIngest(digest);
      await aborted.writeAt(data, 0);
      await aborted.abort();
      await aborted.abort();
      expect(await store.stat(digest)).toBeUndefined();
      const ingest = await store.openIngest(digest);
      await ingest.writeAt(data, 0);
      await ingest.commit();
      const listed = [];
      for await (const b of store.list()) listed.push(b);
      expect(listed).toEqual([{ digest, size: data.length }]);
      expect(await store.delete(digest)).toBe(true);
      expect(await store.delete(digest)).toBe(false);
    });
  });
}

/** What garbage collection needs from a store: access times and the ingest area. */
export function collectableStoreConformance(name: string, open: () => Promise<CollectableStore>): void {
  describe(`CollectableStore conformance: ${name}`, () => {
    const data = Buffer.from('a blob the collector may remove');
    const digest = sha256Digest(data);
    const collect = async <T>(it: AsyncIterable<T>): Promise<T[]> => {
      const out: T[] = [];
      for await (const x of it) out.push(x);
      return out;
    };

    it('reports each blob with the last access time recorded by touch', async () => {
      const store = await open();
      const ingest = await store.openIngest(digest);
      await ingest.writeAt(data, 0);
      await ingest.commit();
      await store.touch(digest, 1_700_000_123_000);
      expect(await collect(store.usage())).toEqual([{ digest, size: data.length, accessedAt: 1_700_000_123_000 }]);
      await store.touch(sha256Digest('absent'), 5); // a blob removed meanwhile is no error
      await store.close();
    });

    it('lists ingest files with their size until they are committed or removed', async () => {
      const store = await open();
      const other = Buffer.from('another blob, left half written');
      const otherDigest = sha256Digest(other);
      const left = await store.openIngest(otherDigest);
      await left.writeAt(other.subarray(0, 10), 0);
      await left.suspend();
      const ingest = await store.openIngest(digest);
      await ingest.writeAt(data, 0);
      const listed = await collect(store.ingests());
      expect(listed.map((i) => [i.digest, i.size]).sort()).toEqual([[digest, data.length], [otherDigest, 10]].sort());
      for (const i of listed) expect(Number.isFinite(i.modifiedAt)).toBe(true);
      await ingest.commit();
      expect((await collect(store.ingests())).map((i) => i.digest)).toEqual([otherDigest]);
      expect(await store.removeIngest(otherDigest)).toBe(true);
      expect(await store.removeIngest(otherDigest)).toBe(false);
      expect(await collect(store.ingests())).toEqual([]);
      const resumed = await store.openIngest(otherDigest, { resume: true });
      expect(resumed.resumedBytes).toBe(0);
      await resumed.abort();
      await store.close();
    });
  });
}
