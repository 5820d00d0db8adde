import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { sha256Digest } from '../../../src/digest.ts';
import { isPollenError } from '../../../src/errors.ts';
import { MemoryContentStore } from '../../../src/memory-content-store.ts';
import { PartialBlob } from '../../../src/partial-blob.ts';

async function setup(data: Buffer) {
  const store = new MemoryContentStore();
  const digest = sha256Digest(data);
  const ingest = await store.openIngest(digest);
  return { store, digest, partial: new PartialBlob({ store, ingest }, { size: data.length }) };
}

describe('PartialBlob', () => {
  const data = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');

  it('streams bytes to a reader that started before they arrived, then the committed rest', async () => {
    const { partial } = await setup(data);
    const reading = buffer(partial.createReadStream());
    await partial.append(data.subarray(0, 10));
    await partial.append(data.subarray(10));
    await partial.commit();
    expect((await reading).equals(data)).toBe(true);
  });

  it('serves a range that lies beyond what has arrived once it arrives', async () => {
    const { partial } = await setup(data);
    const reading = buffer(partial.createReadStream({ start: 20, end: 25 }));
    await partial.append(data.subarray(0, 30));
    await partial.append(data.subarray(30));
    await partial.commit();
    expect((await reading).toString()).toBe('klmnop');
  });

  it('never ends a reader cleanly when the blob fails verification', async () => {
    const bad = Buffer.from(data);
    const { store, digest } = await setup(data);
    const ingest = await store.openIngest(digest);
    const partial = new PartialBlob({ store, ingest }, { size: data.length });
    bad[35] = 0x21;
    const reading = buffer(partial.createReadStream());
    await partial.append(bad);
    await expect(partial.commit()).rejects.toSatisfy((e) => isPollenError(e, 'ERR_DIGEST_MISMATCH'));
    await expect(reading).rejects.toSatisfy((e) => isPollenError(e, 'ERR_DIGEST_MISMATCH'));
    expect(await store.stat(digest)).toBeUndefined();
  });

  it("returns from a reader's last byte without waiting for the ingest's file to close", async () => {
    const store = new MemoryContentStore();
    const digest = sha256Digest(data);
    const inner = await store.openIngest(digest);
    let closes = 0;
    // An ingest whose close never finishes (a slow file system, a busy thread pool).
    const ingest = new Proxy(inner, {
      get: (target, key) => {
        if (key === 'close') return () => (closes++, new Promise<void>(() => {}));
        const v = Reflect.get(target, key) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const partial = new PartialBlob({ store, ingest }, { size: data.length });
    const reader = partial.pooledBody().chunks(() => Buffer.alloc(64))[Symbol.asyncIterator]();
    const first = reader.next();
    await partial.append(data);
    await partial.commit();
    const chunks: Buffer[] = [];
    for (let r = await first; ; r = await reader.next()) {
      if (r.done) throw new Error('ended before the last byte');
      chunks.push(Buffer.from(r.value));
      if (Buffer.concat(chunks).length === data.length) break;
    }
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    // The blob is committed and this was its last reader: the handle closes, and the reader ends now.
    const end = await Promise.race([reader.next(), new Promise((r) => setTimeout(() => r('still waiting'), 1_000))]);
    expect(end).toEqual({ done: true, value: undefined });
    expect(closes).toBe(1);
  });

  it('serves out-of-order writes only up to the contiguous prefix it is told about', async () => {
    const { partial } = await setup(data);
    const chunks: Buffer[] = [];
    const stream = partial.createReadStream();
    stream.on('data', (c: Buffer) => chunks.push(c));
    await partial.writeAt(data.subarray(20), 20);
    await new Promise((r) => setTimeout(r, 10));
    expect(Buffer.concat(chunks).length).toBe(0);
    await partial.writeAt(data.subarray(0, 20), 0);
    partial.setAvailable(data.length);
    await partial.commit();
    await new Promise((r) => stream.on('end', r));
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  });

  it('refuses appends past the declared size', async () => {
    const { partial } = await setup(data);
    await expect(partial.append(Buffer.concat([data, data]))).rejects.toSatisfy((e) => isPollenError(e, 'ERR_SIZE_MISMATCH'));
  });
});
