// The contract every ContentStore implementation must meet; run against each implementation.
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import type { ContentStore } from '../../../src/content-store.ts';
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

    it('commits out-of-order writes after verifying the whole content', async () => {
      const store = await open();
      const ingest = await store.openIngest(digest);
      await ingest.writeAt(data.subarray(10), 10);
      await ingest.writeAt(data.subarray(0, 10), 0);
      await ingest.commit();
      expect((await store.stat(digest))?.size).toBe(data.length);
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
