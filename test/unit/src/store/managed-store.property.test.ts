// Properties of the managed store under random puts, reads, leases and releases (fast-check):
// usage equals what the store holds and never passes the quota, a leased blob is never evicted,
// every eviction takes blobs read less recently than every unleased survivor, and a put fails with
// ERR_DISK_QUOTA exactly when evicting every unleased blob would not make room.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { sha256Digest, type Digest } from '../../../../src/digest.ts';
import { isPollenError } from '../../../../src/errors.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { ManagedStore } from '../../../../src/store/managed-store.ts';

const QUOTA = 100;
const SIZES = [10, 25, 40, 5, 30, 15, 60, 20];
const contentOf = (i: number): Buffer => Buffer.alloc(SIZES[i]!, i + 1);
const digestOf = (i: number): Digest => sha256Digest(contentOf(i));

type Op = { kind: 'put' | 'read' | 'lease' | 'release'; blob: number };
const op = fc.record({ kind: fc.constantFrom<Op['kind']>('put', 'read', 'lease', 'release'), blob: fc.integer({ min: 0, max: SIZES.length - 1 }) });

describe('ManagedStore properties', () => {
  it('keeps usage exact and under the quota, honours leases and LRU order, and refuses only what cannot fit', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
        const clock = new ManualClock(1_000);
        const store = new ManagedStore({ store: new MemoryContentStore({ clock }), clock }, { quota: { bytes: QUOTA, label: '100 B' } });
        await store.start();
        const leases = new Map<number, Array<() => void>>();
        const leased = (i: number): boolean => (leases.get(i)?.length ?? 0) > 0;
        const evicted: Digest[] = [];
        const evictedWhileLeased: number[] = [];
        store.onRemoved((r) => {
          const i = SIZES.findIndex((_, k) => digestOf(k) === r.digest);
          if (leased(i)) evictedWhileLeased.push(i); // the store swallows listener errors: checked below
          evicted.push(r.digest);
        });
        const present = async (i: number): Promise<boolean> => (await store.stat(digestOf(i))) !== undefined;

        for (const { kind, blob } of ops) {
          clock.advance(10);
          if (kind === 'put' && !(await present(blob))) {
            const before = store.index.oldestFirst().map((b) => b.digest);
            const used = store.index.usedBytes;
            const pinned = before.filter((d) => leased(SIZES.findIndex((_, k) => digestOf(k) === d)));
            const pinnedBytes = pinned.reduce((n, d) => n + (store.index.blobSize(d) ?? 0), 0);
            const fits = used + SIZES[blob]! <= QUOTA || pinnedBytes + SIZES[blob]! <= QUOTA;
            evicted.length = 0;
            try {
              const ingest = await store.openIngest(digestOf(blob), { expectedSize: SIZES[blob]! });
              await ingest.writeAt(contentOf(blob), 0);
              await ingest.commit();
              expect(fits).toBe(true);
            } catch (err) {
              expect(isPollenError(err, 'ERR_DISK_QUOTA')).toBe(true);
              expect(fits).toBe(false);
              expect(evicted).toEqual([]);
            }
            // Evicted blobs are the oldest: every unleased survivor was read more recently.
            const survivors = before.filter((d) => !evicted.includes(d) && !pinned.includes(d));
            for (const e of evicted) for (const s of survivors) expect(before.indexOf(e)).toBeLessThan(before.indexOf(s));
          } else if (kind === 'read' && (await present(blob))) {
            const stream = await store.read(digestOf(blob));
            for await (const _ of stream);
          } else if (kind === 'lease') {
            leases.set(blob, [...(leases.get(blob) ?? []), store.lease(digestOf(blob))]);
          } else if (kind === 'release') {
            leases.get(blob)?.pop()?.();
          }
          let held = 0;
          for (let i = 0; i < SIZES.length; i++) if (await present(i)) held += SIZES[i]!;
          expect(evictedWhileLeased).toEqual([]);
          expect(store.index.usedBytes).toBe(held);
          expect(held).toBeLessThanOrEqual(QUOTA);
        }
      }),
      { numRuns: 200 },
    );
  });
});
