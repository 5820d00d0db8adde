// Quota, leases and LRU eviction of the managed store, on a manual clock, over both stores.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import type { CollectableStore } from '../../../../src/content-store.ts';
import { sha256Digest, type Digest } from '../../../../src/digest.ts';
import { isPollenError } from '../../../../src/errors.ts';
import { FsContentStore } from '../../../../src/fs-content-store.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { Collector } from '../../../../src/store/collector.ts';
import { ManagedStore, type Removed } from '../../../../src/store/managed-store.ts';
import { parseQuota, resolveQuota } from '../../../../src/store/quota.ts';

const blob = (name: string, size = 30): Buffer => Buffer.alloc(size, name);
const T0 = 1_700_000_000_000;

async function put(store: ManagedStore, data: Buffer): Promise<Digest> {
  const digest = sha256Digest(data);
  const ingest = await store.openIngest(digest, { expectedSize: data.length });
  await ingest.writeAt(data, 0);
  await ingest.commit(data.length);
  return digest;
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const inners: Array<[string, (clock: ManualClock) => Promise<CollectableStore>]> = [
  ['memory', async (clock) => new MemoryContentStore({ clock })],
  [
    'fs',
    async () => {
      const d = await mkdtemp(join(tmpdir(), 'pollen-managed-'));
      dirs.push(d);
      return FsContentStore.open(d);
    },
  ],
];

describe.each(inners)('ManagedStore over the %s store', (_name, makeInner) => {
  async function open(quotaBytes: number | undefined, clock = new ManualClock(T0)) {
    const store = new ManagedStore({ store: await makeInner(clock), clock }, { quota: quotaBytes === undefined ? undefined : { bytes: quotaBytes, label: `${quotaBytes} B` } });
    await store.start();
    const removed: Removed[] = [];
    store.onRemoved((r) => removed.push(r));
    return { store, clock, removed };
  }

  it('evicts the least recently read blobs, down to 90 % of the quota, when a write would pass it', async () => {
    const { store, clock, removed } = await open(100);
    const a = await put(store, blob('a'));
    clock.advance(1000);
    const b = await put(store, blob('b'));
    clock.advance(1000);
    const c = await put(store, blob('c'));
    clock.advance(1000);
    (await store.read(a)).resume(); // a is now the most recently read
    clock.advance(1000);
    const d = await put(store, blob('d'));
    // 90 used + 30 new > 100: evict oldest first until 90 - 30 = 60 remain: b only.
    expect(removed).toEqual([{ digest: b, size: 30, reason: 'quota' }]);
    expect(await store.stat(b)).toBeUndefined();
    for (const kept of [a, c, d]) expect(await store.stat(kept)).toBeDefined();
    expect(store.index.usedBytes).toBe(90);
  });

  it('never evicts a leased blob, or one a reader still streams, and evicts it once released', async () => {
    const { store, clock, removed } = await open(100);
    const a = await put(store, blob('a'));
    clock.advance(1000);
    const b = await put(store, blob('b'));
    clock.advance(1000);
    const c = await put(store, blob('c'));
    const release = store.lease(a);
    const reading = await store.read(b);
    clock.advance(1000);
    const d = await put(store, blob('d')); // a and b are the oldest but in use: c goes
    expect(removed.map((r) => r.digest)).toEqual([c]);
    release();
    await new Promise<void>((resolve) => reading.once('close', resolve).destroy());
    clock.advance(1000);
    await put(store, blob('e'));
    expect(removed.map((r) => r.digest)).toEqual([c, a]);
    expect(await store.stat(d)).toBeDefined();
  });

  it('fails a write with ERR_DISK_QUOTA, evicting nothing, when every blob it could evict is in use', async () => {
    const { store, removed } = await open(100);
    const a = await put(store, blob('a', 40));
    const b = await put(store, blob('b', 40));
    const releases = [store.lease(a), store.lease(b)];
    const big = blob('x', 30);
    // Declared up front: refused before anything is written or promised to a client.
    await expect(store.openIngest(sha256Digest(big), { expectedSize: big.length })).rejects.toSatisfy(
      (e) => isPollenError(e, 'ERR_DISK_QUOTA') && /quota 100 B/.test(e.message) && e.detail.neededBytes === 30,
    );
    // Undeclared: the write that would pass the quota fails.
    const ingest = await store.openIngest(sha256Digest(big));
    await ingest.writeAt(big.subarray(0, 20), 0);
    await expect(ingest.writeAt(big.subarray(20), 20)).rejects.toSatisfy((e) => isPollenError(e, 'ERR_DISK_QUOTA'));
    await ingest.abort();
    expect(removed).toEqual([]);
    expect(store.index.usedBytes).toBe(80);
    // The store keeps serving what it has, and takes new blobs once something is released.
    (await store.read(a)).resume();
    releases.forEach((r) => r());
    await put(store, big);
    expect(store.index.usedBytes).toBeLessThanOrEqual(100);
  });

  it('counts ingests in flight against the quota: two downloads never pass it together', async () => {
    const { store } = await open(100);
    const first = blob('1', 60);
    const second = blob('2', 60);
    const i1 = await store.openIngest(sha256Digest(first), { expectedSize: 60 });
    await expect(store.openIngest(sha256Digest(second), { expectedSize: 60 })).rejects.toSatisfy((e) => isPollenError(e, 'ERR_DISK_QUOTA'));
    await i1.writeAt(first, 0);
    await i1.commit(60);
    expect(store.index.usedBytes).toBe(60);
    await put(store, second); // first is now an unused blob: evicted for second
    expect(store.index.usedBytes).toBe(60);
  });

  it('releases the accounting of a failed or aborted ingest', async () => {
    const { store } = await open(100);
    const data = blob('v', 50);
    const ingest = await store.openIngest(sha256Digest(data), { expectedSize: 50 });
    await ingest.writeAt(blob('w', 50), 0);
    await expect(ingest.commit(50)).rejects.toSatisfy((e) => isPollenError(e, 'ERR_DIGEST_MISMATCH'));
    expect(store.index.usedBytes).toBe(0);
    expect(store.isLeased(sha256Digest(data))).toBe(false);
  });

  it('expires blobs not read for the TTL, at each interval', async () => {
    const { store, clock, removed } = await open(undefined);
    const a = await put(store, blob('a'));
    const b = await put(store, blob('b'));
    const gc = new Collector({ store, clock }, { blobTtlMs: 60 * 60_000, intervalMs: 10 * 60_000 });
    expect((await gc.start()).removed).toEqual([]);
    // One interval at a time, letting each collection finish (the next is timed from its end).
    const step = async (): Promise<void> => {
      clock.advance(10 * 60_000);
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    };
    for (let i = 0; i < 3; i++) await step();
    (await store.read(a)).resume();
    for (let i = 0; i < 3; i++) await step();
    expect(removed).toEqual([]); // b unread for 60 min: not yet
    await step(); // b unread for 70 min, a for 40
    await expect.poll(() => removed.length).toBe(1);
    expect(removed).toEqual([{ digest: b, size: 30, reason: 'ttl' }]);
    expect(await store.stat(a)).toBeDefined();
    await gc.close();
  });

  it('removes abandoned ingests, never one a download is writing, and reports what it removed', async () => {
    const { store, clock } = await open(1000);
    const left = blob('left', 25);
    const suspended = await store.openIngest(sha256Digest(left));
    await suspended.writeAt(left.subarray(0, 10), 0);
    await suspended.suspend();
    const live = await store.openIngest(sha256Digest(blob('live')));
    await live.writeAt(blob('live').subarray(0, 5), 0);
    expect(store.index.usedBytes).toBe(15);
    clock.advance(2 * 60 * 60_000);
    const gc = new Collector({ store, clock }, { abandonedIngestMs: 60 * 60_000 });
    const report = await gc.collect();
    // The fs store stamps ingests with the real clock: only the memory store follows the manual one.
    if (_name === 'memory') {
      expect(report.ingests).toEqual([{ digest: sha256Digest(left), size: 10 }]);
      expect(store.index.usedBytes).toBe(5);
    }
    expect(report.ingests.map((i) => i.digest)).not.toContain(sha256Digest(blob('live')));
    await live.abort();
    await gc.close();
  });
});

describe('collector and an ingest it cannot remove', () => {
  it('reports it, skips it, and removes the other abandoned ingests', async () => {
    const clock = new ManualClock(T0);
    const stuck = sha256Digest(blob('stuck'));
    class Stubborn extends MemoryContentStore {
      override async removeIngest(digest: Digest): Promise<boolean> {
        if (digest === stuck) throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
        return super.removeIngest(digest);
      }
    }
    const store = new ManagedStore({ store: new Stubborn({ clock }), clock }, { quota: { bytes: 1000, label: '1000 B' } });
    await store.start();
    for (const name of ['stuck', 'gone']) {
      const ingest = await store.openIngest(sha256Digest(blob(name)));
      await ingest.writeAt(blob(name).subarray(0, 10), 0);
      await ingest.suspend();
    }
    clock.advance(2 * 60 * 60_000);
    const warnings: string[] = [];
    const logger = { child: () => logger, warn: (_o: unknown, msg: string) => warnings.push(msg), info: () => {} } as unknown as ConstructorParameters<typeof Collector>[0]['logger'];
    const gc = new Collector({ store, clock, logger }, { abandonedIngestMs: 60 * 60_000 });
    const report = await gc.collect();
    expect(report.ingests).toEqual([{ digest: sha256Digest(blob('gone')), size: 10 }]);
    expect(warnings).toEqual(['could not remove an abandoned ingest']);
    await gc.close();
  });
});

describe('quota', () => {
  it('resolves a percentage against the size of the filesystem holding the store', async () => {
    const q = await resolveQuota(parseQuota('80%'), '/data', async () => 1000);
    expect(q.bytes).toBe(800);
    expect(q.label).toMatch(/^80% of the filesystem/);
    expect((await resolveQuota(parseQuota('20GiB'), '/data')).bytes).toBe(20 * 1024 ** 3);
    for (const bad of ['0%', '101%', '-5', 'lots', '0']) expect(() => parseQuota(bad), bad).toThrow(/quota|size/);
  });

  it('applies a percentage quota to the store: evicts at 50 % of a 200-byte filesystem', async () => {
    const clock = new ManualClock(T0);
    const quota = await resolveQuota(parseQuota('50%'), '/data', async () => 200);
    const store = new ManagedStore({ store: new MemoryContentStore({ clock }), clock }, { quota });
    await store.start();
    const a = await put(store, blob('a', 40));
    clock.advance(1);
    await put(store, blob('b', 40));
    clock.advance(1);
    await put(store, blob('c', 40));
    expect(await store.stat(a)).toBeUndefined();
    expect(store.index.usedBytes).toBe(80);
  });
});

describe('restart', () => {
  it('keeps usage and least-recently-read order across a restart of an fs store', async () => {
    const root = await mkdtemp(join(tmpdir(), 'pollen-restart-'));
    dirs.push(root);
    const clock = new ManualClock(T0);
    const first = new ManagedStore({ store: await FsContentStore.open(root), clock }, { quota: { bytes: 100, label: '100 B' } });
    await first.start();
    const a = await put(first, blob('a'));
    clock.advance(5000);
    const b = await put(first, blob('b'));
    clock.advance(5000);
    (await first.read(a)).resume();
    await first.close();

    clock.advance(5000);
    const second = new ManagedStore({ store: await FsContentStore.open(root), clock }, { quota: { bytes: 100, label: '100 B' } });
    await second.start();
    expect(second.index.usedBytes).toBe(60);
    expect(second.index.oldestFirst().map((x) => x.digest)).toEqual([b, a]);
    const removed: Digest[] = [];
    second.onRemoved((r) => removed.push(r.digest));
    await put(second, blob('c', 50));
    expect(removed).toEqual([b]);
    await second.close();
  });
});
