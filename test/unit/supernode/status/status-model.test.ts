import { describe, expect, it } from 'vitest';
import type { Digest } from '../../../../src/digest.ts';
import { Bitfield } from '../../../../src/p2p/bitfield.ts';
import type { PeerRecord } from '../../../../supernode/p2p/tracker.ts';
import { GRID_COLUMNS, MAX_GRID_ROWS, StatusModel, gridRow } from '../../../../supernode/status/status-model.ts';

const D = `sha256:${'a'.repeat(64)}` as Digest;
const MiB = 1 << 20;

function peer(id: string): PeerRecord {
  return { peerId: id, tokenHash: Buffer.alloc(32), wireAddr: `127.0.0.1:${id.length}`, uploadSlots: 10, lastSeen: 0, failures: 0, corruptions: 0, failuresDecayedAt: 0, picks: 0, children: 0, reports: 0, reportsWindowAt: 0, tasks: new Set([D]), taskNames: new Map() };
}

/** A model whose only peer is `id`, on a clock the test moves (`clock.now`). */
function onePeer(id: string): { p: PeerRecord; model: StatusModel; clock: { now: number } } {
  const clock = { now: 10_000 };
  const p = peer(id);
  const model = new StatusModel({
    now: () => clock.now,
    sources: { peers: () => [p], tasks: () => [], seedTask: () => undefined, seedCounters: () => ({ registryBytes: 0, servedBytes: 0 }), jobs: () => [] },
  });
  return { p, model, clock };
}

describe('gridRow', () => {
  it('gives one cell per piece for small blobs: 9 held, 0 missing', () => {
    const b = new Bitfield(5);
    b.set(0);
    b.set(3);
    expect(gridRow(b, 5)).toBe('90090');
  });

  it(`folds large blobs into ${GRID_COLUMNS} cells of the share held`, () => {
    const b = new Bitfield(1000);
    for (let i = 0; i < 500; i++) b.set(i);
    const row = gridRow(b, 1000);
    expect(row).toHaveLength(GRID_COLUMNS);
    expect(row.slice(0, 31)).toBe('9'.repeat(31));
    expect(row.slice(33)).toBe('0'.repeat(GRID_COLUMNS - 33));
  });
});

describe('StatusModel', () => {
  it('derives each peer\'s download rate from the pieces it reports, and the task\'s bytes by source', () => {
    let now = 1_000;
    const bits = new Bitfield(8);
    const holders = new Map([['p1', bits]]);
    const model = new StatusModel({
      now: () => now,
      sources: {
        peers: () => [peer('p1')],
        tasks: () => [{ digest: D, pieceCount: 8, holders }],
        seedTask: () => ({ meta: { digest: D, size: 8 * MiB, pieceSize: MiB, pieceCount: 8, hashes: [] }, state: { name: 'complete' } }),
        seedCounters: () => ({ registryBytes: 8 * MiB, servedBytes: 2 * MiB }),
        jobs: () => [],
      },
    });
    expect(model.snapshot().peers[0]!.downBps).toBe(0);
    for (const i of [0, 1, 2, 3]) bits.set(i);
    model.onSeedPiece(D, 2 * MiB);
    now += 2_000;
    const s = model.snapshot();
    expect(s.peers[0]).toMatchObject({ id: 'p1', downBps: 2 * MiB, version: null, upBps: null });
    expect(s.tasks[0]).toMatchObject({ digest: D, holders: 1, complete: 0, seed: 'complete', bytes: { seed: 2 * MiB, peers: 2 * MiB } });
    expect(s.tasks[0]!.grid[0]).toEqual({ peer: 'p1', cells: '99990000', held: 4 });
  });

  it('shows what heartbeats report: version, store use, and up/down rates over the recent window', () => {
    const { p, model, clock } = onePeer('p2');
    p.lastSeen = clock.now;
    p.report = { version: '0.1.0', storeBytes: 5 * MiB, storeQuotaBytes: 100 * MiB, uploadedBytes: 0, downloadedBytes: 0 };
    expect(model.snapshot().peers[0]).toMatchObject({ version: '0.1.0', storeBytes: 5 * MiB, storeQuotaBytes: 100 * MiB, upBps: 0, downBps: 0 });
    clock.now += 1_000;
    p.lastSeen = clock.now;
    p.report = { version: '0.1.0', storeBytes: 9 * MiB, uploadedBytes: 3 * MiB, downloadedBytes: 4 * MiB };
    expect(model.snapshot().peers[0]).toMatchObject({ storeBytes: 9 * MiB, upBps: 3 * MiB, downBps: 4 * MiB });
    // A snapshot between heartbeats keeps the rate (same report, same time).
    clock.now += 500;
    expect(model.snapshot().peers[0]).toMatchObject({ upBps: 3 * MiB, downBps: 4 * MiB });
  });

  it('shows the upload rate from the second report on, whatever the snapshots taken before the first report', () => {
    const { p, model, clock } = onePeer('p3');
    // The page polls many times a second while the peer has not reported yet: estimates, no upload total.
    for (let i = 0; i < 40; i++, clock.now += 60) expect(model.snapshot().peers[0]!.upBps).toBeNull();
    p.lastSeen = clock.now;
    p.report = { uploadedBytes: 10 * MiB, downloadedBytes: 24 * MiB };
    expect(model.snapshot().peers[0]!.upBps).toBe(0);
    clock.now += 1_000;
    p.lastSeen = clock.now;
    p.report = { uploadedBytes: 13 * MiB, downloadedBytes: 24 * MiB };
    expect(model.snapshot().peers[0]).toMatchObject({ upBps: 3 * MiB, downBps: 0 });
  });

  it('shows a preheat job\'s image URL without credentials', () => {
    const job = { id: 7, state: 'PENDING', phase: 'running', args: { url: 'https://user:pw@registry.example/v2/app/manifests/v1?token=abc' }, progress: { layers: { total: 1, done: 0, failed: 0 }, peers: { total: 1, done: 0, failed: 0 }, tasks: { total: 1, done: 0, failed: 0 } } };
    const model = new StatusModel({
      sources: { peers: () => [], tasks: () => [], seedTask: () => undefined, seedCounters: () => ({ registryBytes: 0, servedBytes: 0 }), jobs: () => [job as never] },
    });
    const s = model.snapshot();
    expect(s.jobs[0]).toMatchObject({ id: 7, state: 'PENDING', phase: 'running' });
    expect(s.jobs[0]!.target).toBe('https://registry.example/v2/app/manifests/v1?…');
    expect(JSON.stringify(s)).not.toMatch(/pw|token=abc/);
  });

  it(`draws at most ${MAX_GRID_ROWS} rows per task however many peers hold it`, () => {
    const holders = new Map(Array.from({ length: MAX_GRID_ROWS * 3 }, (_, i) => [`p${i}`, new Bitfield(4)] as const));
    const model = new StatusModel({
      sources: { peers: () => [], tasks: () => [{ digest: D, pieceCount: 4, holders }], seedTask: () => undefined, seedCounters: () => ({ registryBytes: 0, servedBytes: 0 }), jobs: () => [] },
    });
    const t = model.snapshot().tasks[0]!;
    expect(t.holders).toBe(MAX_GRID_ROWS * 3);
    expect(t.grid).toHaveLength(MAX_GRID_ROWS);
  });
});
