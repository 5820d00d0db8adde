import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { BLOCK_BYTES } from '../../../../src/p2p/metainfo.ts';
import { MAX_SYNC_PACE_MS } from '../../../../src/p2p/supernode-api.ts';
import { TICK_MS } from '../../../../peer/p2p/transfer-seams.ts';
import { RECORD_EVERY_MS } from '../../../../peer/p2p/bitfield-record.ts';
import { HOST_SEED_LEASES, PARENT_FEEDING_MS, seedLeasesPerTransfer, seedLeasesWanted } from '../../../../peer/p2p/seed-grants.ts';
import { ExpiringBans } from '../../../../src/p2p/wire-bans.ts';
import { ENDGAME_COPIES, ENDGAME_LAG_MS } from '../../../../peer/p2p/piece-picker.ts';
import { HAVE_BYTES_PER_SYNC, QUIET_SYNC_FACTOR, syncInterval } from '../../../../peer/p2p/transfer-sync.ts';
import { MIN_WINDOW_BLOCKS, SLOW_PARENT_STALL_FACTOR } from '../../../../peer/p2p/parent-link.ts';
import { DEFAULT_TIMINGS } from '../../../../peer/p2p/transfer-seams.ts';
import { MAX_PARENTS, MIN_PARENTS, parentsPerTransfer, USELESS_PATIENCE_MS } from '../../../../peer/p2p/parent-pool.ts';
import { Bitfield } from '../../../../src/p2p/bitfield.ts';
import { PollenError } from '../../../../src/errors.ts';
import { harness, offerParents, PIECE_BYTES, type Harness } from '../../../helpers/transfer-harness.ts';

const open: Harness[] = [];
function start(options: Parameters<typeof harness>[0]): Harness {
  const h = harness(options);
  open.push(h);
  return h;
}
afterEach(async () => {
  for (const h of open.splice(0)) await h.transfer.close();
});

const pieceOf = (entry: string): number => Number(entry.split(':')[1]!.split('/')[0]);
const firstPieces = (log: readonly string[]): number[] => [...new Set(log.map(pieceOf))];

describe("the host's seed leases", () => {
  it('a transfer alone asks for two (its seed line never waits a sync); concurrent ones share them, at least one each', () => {
    expect(HOST_SEED_LEASES).toBe(2);
    expect([0, 1, 2, 3, 4, 40].map(seedLeasesPerTransfer)).toEqual([2, 2, 1, 1, 1, 1]);
  });

  it('each sync asks the supernode for the share the host gives the transfer now', async () => {
    let share = 2;
    const h = start({ pieces: 8, parents: [], seedLeases: () => share });
    await h.settle();
    expect(h.supernode.syncs[0]!.body.wantSeed).toBe(2);
    h.supernode.answer({});
    share = 1;
    await h.advance(600);
    expect(h.supernode.syncs.at(-1)!.body.wantSeed).toBe(1);
  });
});

describe('seed leases for a transfer that passes pieces on', () => {
  it('asks for none while parents feed it and it has no child in the blob, unless starved; a lone transfer asks as before', async () => {
    let children = 0;
    const h = start({ pieces: 8, parents: ['a'], children: () => children });
    // No parent yet: it may be alone.
    await h.settle();
    expect(h.supernode.syncs[0]!.body.wantSeed).toBe(HOST_SEED_LEASES);
    h.supernode.answer({ parents: [{ peerId: 'a', wireAddr: 'a' }] });
    await h.settle();
    h.parents.get('a')!.connect([0, 1]);
    await h.settle();
    const nextAsk = async (): Promise<{ wantSeed: number; starved?: boolean | undefined }> => {
      for (let waited = 0; h.supernode.syncs.length === 0 && waited < 10_000; waited += 100) await h.advance(100);
      const { wantSeed, starved } = h.supernode.answer({});
      return { wantSeed, starved };
    };
    expect((await nextAsk()).wantSeed).toBe(0);
    children = 1;
    expect((await nextAsk()).wantSeed).toBe(HOST_SEED_LEASES);
    children = 0;
    h.parents.get('a')!.deliver();
    await h.settle();
    expect((await nextAsk()).wantSeed).toBe(0);
    // Its parent has nothing more for it: a second later the seed is its way, child or not.
    await h.advance(PARENT_FEEDING_MS, 100);
    expect((await nextAsk()).wantSeed).toBe(HOST_SEED_LEASES);
  });

  it('seedLeasesWanted: none only while fed by parents, with no child and not starved', () => {
    expect(seedLeasesWanted(2, { children: 0, fedByParents: true, starved: false })).toBe(0);
    expect(seedLeasesWanted(2, { children: 3, fedByParents: true, starved: false })).toBe(2);
    expect(seedLeasesWanted(2, { children: 0, fedByParents: false, starved: false })).toBe(2);
    expect(seedLeasesWanted(2, { children: 0, fedByParents: true, starved: true })).toBe(2);
    expect(seedLeasesWanted(1, { children: undefined, fedByParents: true, starved: false })).toBe(1);
  });
});

describe('the host\'s parent budget', () => {
  it('one transfer gets MAX_PARENTS; concurrent transfers share the budget, never below MIN_PARENTS', () => {
    expect(parentsPerTransfer(0)).toBe(MAX_PARENTS);
    expect(parentsPerTransfer(1)).toBe(MAX_PARENTS);
    expect(parentsPerTransfer(2)).toBe(6);
    expect(parentsPerTransfer(4)).toBe(3);
    expect(parentsPerTransfer(40)).toBe(MIN_PARENTS);
  });

  it('a transfer dials no more parents than its share when it is offered more, and more once the share grows', async () => {
    let share = 2;
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const h = start({ pieces: 8, parents: ids, maxParents: () => share });
    await offerParents(h, { a: [0, 1, 2, 3, 4, 5, 6, 7], b: [0, 1, 2, 3, 4, 5, 6, 7], c: [0, 1, 2, 3, 4, 5, 6, 7], d: [0, 1, 2, 3, 4, 5, 6, 7], e: [0, 1, 2, 3, 4, 5, 6, 7] });
    expect(h.dialled).toEqual(['a', 'b']);
    share = 4;
    await h.advance(600);
    h.supernode.answer({ parents: ids.map((id) => ({ peerId: id, wireAddr: id })) });
    await h.settle();
    expect(h.dialled).toEqual(['a', 'b', 'c', 'd']);
  });
  it('keeps a parent that holds nothing we lack for USELESS_PATIENCE_MS before it makes room for one offered', async () => {
    const h = start({ pieces: 4, parents: ['a', 'b', 'c'], maxParents: () => 2 });
    // Both parents are downloading too: nothing we lack yet.
    await offerParents(h, { a: [], b: [] });
    const offerC = async (): Promise<void> => {
      await h.advance(600);
      h.supernode.answer({ parents: [{ peerId: 'c', wireAddr: 'c' }] });
      await h.settle();
    };
    await offerC();
    expect(h.dialled).toEqual(['a', 'b']);
    expect(h.parents.get('a')!.isClosed).toBe(false);
    // One announces a piece and is given it: it stays; the other, idle past the patience, goes.
    h.parents.get('a')!.announce(0);
    await h.settle();
    await h.advance(USELESS_PATIENCE_MS - 600);
    await offerC();
    expect(h.parents.get('b')!.closeReason).toBe('holds nothing we need');
    expect(h.parents.get('a')!.isClosed).toBe(false);
    expect(h.dialled).toEqual(['a', 'b', 'c']);
  });
});

describe('a transfer whose parents hold nothing it lacks', () => {
  it('waits USELESS_PATIENCE_MS on them while no other peer holds a piece it lacks, none once one does', async () => {
    // Parents a and b hold pieces 0-2; a announces 2 at 1.8 s and sends it, then neither holds
    // anything the transfer lacks (3). The supernode's counts say whether another peer holds 3.
    const run = async (holdersOf3: number) => {
      const h = start({ pieces: 4, have: [0, 1], parents: ['a', 'b', 'c'], maxParents: () => 2 });
      await offerParents(h, { a: [0, 1], b: [0, 1] });
      await h.advance(1_800);
      h.parents.get('a')!.announce(2);
      await h.settle();
      h.parents.get('a')!.deliver();
      await h.settle();
      const wants: number[] = [];
      const sync = async (res: Parameters<typeof h.supernode.answer>[0]): Promise<void> => {
        for (let waited = 0; h.supernode.syncs.length === 0 && waited < 5_000; waited += 50) await h.advance(50);
        wants.push(h.supernode.syncs[0]!.body.wantParents!);
        h.supernode.answer(res);
        await h.settle();
      };
      await sync({ availability: [3, 3, 3, holdersOf3] });
      await sync({ parents: [{ peerId: 'c', wireAddr: 'c' }] });
      return { wants, h };
    };
    // The first sync (2 s) comes before the counts; at the second (3 s) b has been idle past the
    // patience, a (given piece 2 at 1.8 s) not yet.
    const waiting = await run(0);
    expect(waiting.wants).toEqual([0, 1]);
    expect(waiting.h.parents.get('a')!.isClosed).toBe(false);
    expect(waiting.h.parents.get('b')!.closeReason).toBe('holds nothing we need');
    // Another peer holds 3: a is no reason to wait either.
    const moving = await run(1);
    expect(moving.wants).toEqual([0, 2]);
    expect(moving.h.parents.get('a')!.closeReason).toBe('holds nothing we need');
    expect(moving.h.dialled).toEqual(['a', 'b', 'c']);
  });
});

describe('the transfers of a peer tick together', () => {
  it('ticks on the process grid, not from its own start, so periodic syncs of transfers started apart fall at the same instants', async () => {
    const syncTimes = async (startAt: number): Promise<number[]> => {
      const h = start({ pieces: 4, parents: ['a'], startAt, tickPhaseMs: 0 });
      const times: number[] = [];
      for (let t = 0; t < 2_000; t += 10) {
        while (h.supernode.syncs.length > 0) {
          times.push(h.clock.now());
          h.supernode.answer();
        }
        await h.advance(10, 10);
      }
      return times;
    };
    // Started 140 and 220 ms past a tick: the first sync at the start, then on the 250 ms grid, at the
    // tick nearest each period (both 500 ms periods end nearest the same tick; starts that straddle
    // half a tick end a tick apart, as starts that straddle a tick did when syncs took the next one).
    const first = await syncTimes(1_000_140);
    const second = await syncTimes(1_000_220);
    expect(first[0]).toBe(1_000_140);
    expect(second[0]).toBe(1_000_220);
    for (const t of [...first.slice(1), ...second.slice(1)]) expect(t % 250).toBe(0);
    expect(first.slice(1, 3)).toEqual(second.slice(1, 3));
  });
});

describe('one reputation of parents for every transfer', () => {
  it('a parent that sent one transfer a bad piece is not dialled by another transfer of the same peer', async () => {
    const bans = new ExpiringBans({ clock: new ManualClock(0) });
    const first = start({ pieces: 2, parents: ['bad', 'good'], parentBans: bans });
    await offerParents(first, { bad: [0, 1] });
    first.parents.get('bad')!.deliver(Infinity, true);
    await first.settle();
    expect(first.parents.get('bad')!.closeReason).toBe('sent a bad piece');
    expect(bans.isBanned('bad')).toBe(true);
    const second = start({ pieces: 2, parents: ['bad', 'good'], parentBans: bans });
    await offerParents(second, { good: [0, 1] });
    await second.advance(600);
    second.supernode.answer({ parents: [{ peerId: 'bad', wireAddr: 'bad' }, { peerId: 'good', wireAddr: 'good' }] });
    await second.settle();
    expect(second.dialled).toEqual(['good']);
  });
});

describe('P2pTransfer on a manual clock', () => {
  it('asks the first missing pieces in order, then the rarest first (the lowest index on ties: numbers from the harness never move one)', async () => {
    const h = start({ pieces: 6, parents: ['a', 'b', 'c', 'd'] });
    const all = [0, 1, 2, 3, 4, 5];
    await offerParents(h, { a: all, b: all, c: all, d: all }, { availability: [5, 5, 5, 1, 5, 5] });
    // A fresh parent's window (MIN_WINDOW_BLOCKS) holds one piece of two blocks: one piece each.
    expect(MIN_WINDOW_BLOCKS * BLOCK_BYTES).toBe(PIECE_BYTES);
    expect(firstPieces(h.log)).toEqual([0, 1, 3, 2]);
  });

  it('keeps the last availability through answers that carry none (the supernode sends it at most once a second)', async () => {
    const h = start({ pieces: 6, parents: ['a', 'b', 'c', 'd'] });
    await h.settle();
    h.supernode.answer({ parents: [], availability: [5, 5, 5, 1, 5, 5] });
    await h.settle();
    await h.advance(600);
    const all = [0, 1, 2, 3, 4, 5];
    await offerParents(h, { a: all, b: all, c: all, d: all }, { availability: [] });
    expect(firstPieces(h.log)).toEqual([0, 1, 3, 2]);
  });

  it('keeps no more than MIN_WINDOW_BLOCKS in flight to a parent whose throughput is not known yet', async () => {
    const h = start({ pieces: 6, parents: ['a'] });
    await offerParents(h, { a: [0, 1, 2, 3, 4, 5] });
    expect(h.log).toHaveLength(MIN_WINDOW_BLOCKS);
  });

  it('completes from parents, verifying each piece, and commits', async () => {
    const h = start({ pieces: 3, parents: ['a', 'b'] });
    await offerParents(h, { a: [0, 1, 2], b: [0, 1, 2] });
    for (let k = 0; k < 10 && h.transfer.state.phase === 'p2p'; k++) {
      for (const p of h.parents.values()) p.deliver();
      await h.settle();
    }
    await h.transfer.done;
    expect(h.transfer.state.phase).toBe('done');
    expect(h.transfer.counters.peer).toBe(3 * PIECE_BYTES);
  });

  it('persists the verified bitfield at most once a period: the first piece at once, those verified within the period in one write at its end', async () => {
    const snapshots: string[] = [];
    const kv = {
      put: async (_key: string, value: { pieces: string }): Promise<void> => {
        snapshots.push(value.pieces);
      },
      del: async () => {
        snapshots.push('del');
      },
    };
    const h = start({ pieces: 6, parents: ['a', 'b'], kv });
    await offerParents(h, { a: [0, 1, 2, 3] });
    const verified = (): number => h.transfer.counters.peer / PIECE_BYTES;
    for (let k = 0; k < 12 && verified() < 4; k++) {
      h.parents.get('a')!.deliver();
      await h.settle();
    }
    expect(verified()).toBe(4);
    // Four pieces verified in the same instant: one write, the rest wait for the period.
    expect(snapshots).toHaveLength(1);
    expect(Bitfield.fromBase64(6, snapshots[0]!).count).toBeLessThan(4);
    await h.advance(RECORD_EVERY_MS);
    expect(snapshots).toHaveLength(2);
    expect(Bitfield.fromBase64(6, snapshots[1]!).count).toBe(4);
    await offerParents(h, { b: [4, 5] });
    for (let k = 0; k < 12 && h.transfer.state.phase === 'p2p'; k++) {
      h.parents.get('b')!.deliver();
      await h.settle();
    }
    await h.transfer.done;
    expect(h.transfer.state.phase).toBe('done');
    // Completed within the period: what waited is not written, the record is deleted.
    expect(snapshots).toHaveLength(3);
    expect(snapshots[2]).toBe('del');
  });

  it('reports every piece once committed, and tries that report again when the supernode drops it', async () => {
    const h = start({ pieces: 3, parents: ['a'] });
    await offerParents(h, { a: [0, 1, 2] });
    for (let k = 0; k < 10 && h.transfer.state.phase === 'p2p'; k++) {
      h.parents.get('a')!.deliver();
      await h.settle();
    }
    await h.transfer.done;
    // Syncs still open from the transfer (none answered any more) fail, as they may on a loaded supernode.
    const final = (): { body: { have: number[] }; fail: (e: Error) => void } => h.supernode.syncs.at(-1)! as never;
    expect(final().body.have).toEqual([0, 1, 2]);
    // It knows every hash: the answer need not carry the list again.
    expect(final().body).toMatchObject({ knownHashes: 3 });
    const asked = h.supernode.bodies.length;
    final().fail(new Error('timeout'));
    await h.settle();
    await h.advance(1000, 100);
    expect(h.supernode.bodies.length).toBe(asked + 1);
    expect(h.supernode.bodies.at(-1)!.have).toEqual([0, 1, 2]);
    h.supernode.answer();
  });

  it("sends the report that it has every piece no sooner than the supernode's pacing allows", async () => {
    const h = start({ pieces: 3, parents: ['a'] });
    await offerParents(h, { a: [0, 1, 2] }, { syncMs: 2_000 });
    const paced = h.clock.now();
    for (let k = 0; k < 10 && h.transfer.state.phase === 'p2p'; k++) {
      h.parents.get('a')!.deliver();
      await h.settle();
    }
    await h.transfer.done;
    const asked = h.supernode.bodies.length;
    await h.advance(1_900 - (h.clock.now() - paced), 100);
    expect(h.supernode.bodies.length).toBe(asked);
    await h.advance(200, 100);
    expect(h.supernode.bodies.length).toBe(asked + 1);
    expect(h.supernode.bodies.at(-1)!.have).toEqual([0, 1, 2]);
    h.supernode.answer();
  });

  it('starts on the first schedule that came with the task: dials and asks at once, no sync until the interval and the pacing are over', async () => {
    const all = Array.from({ length: 8 }, (_, i) => i);
    const first = { hashes: [], hashesFrom: 8, parents: [{ peerId: 'a', wireAddr: 'a' }], seedGrants: [], availability: [], syncMs: 1_000 };
    const h = start({ pieces: 8, parents: ['a'], first });
    // Dialled during start(), before any promise ran: nothing was asked of the supernode.
    expect(h.dialled).toEqual(['a']);
    h.parents.get('a')!.connect(all);
    await h.settle();
    expect(h.log.length).toBeGreaterThan(0);
    expect(h.supernode.bodies).toEqual([]);
    // The answer's pacing holds as a sync's would: the first sync leaves 1 s after the start, not 250 ms.
    await h.advance(950);
    expect(h.supernode.bodies).toEqual([]);
    await h.advance(100);
    expect(h.supernode.bodies).toHaveLength(1);
    // Without a first schedule the transfer asks for one at once.
    const plain = start({ pieces: 8, parents: ['a'] });
    await plain.settle();
    expect(plain.dialled).toEqual([]);
    expect(plain.supernode.bodies).toHaveLength(1);
  });

  it('syncs four times as often while it holds nothing, twice as often while it holds less than a quarter of the blob', async () => {
    expect(syncInterval(500, 0, 8)).toBe(125);
    expect(syncInterval(500, 0, 8, true)).toBe(125);
    expect(syncInterval(500, 1, 8)).toBe(250);
    expect(syncInterval(500, 2, 8)).toBe(500);
    const syncsIn2s = async (have: number[]): Promise<number> => {
      const h = start({ pieces: 8, parents: [], have });
      await h.settle();
      h.supernode.answer();
      const before = h.supernode.bodies.length;
      for (let t = 0; t < 2_000; t += 50) {
        await h.advance(50);
        while (h.supernode.syncs.length > 0) h.supernode.answer();
      }
      return h.supernode.bodies.length - before;
    };
    expect(await syncsIn2s([])).toBe(2_000 / (DEFAULT_TIMINGS.syncMs / 4));
    expect(await syncsIn2s([0])).toBe(2_000 / (DEFAULT_TIMINGS.syncMs / 2));
    expect(await syncsIn2s([0, 1])).toBe(2_000 / DEFAULT_TIMINGS.syncMs);
  });

  it('syncs QUIET_SYNC_FACTOR times less often once it holds a quarter and its pool would dial no offered parent', async () => {
    expect(syncInterval(500, 2, 8, true)).toBe(500 * QUIET_SYNC_FACTOR);
    expect(syncInterval(500, 1, 8, true)).toBe(250);
    const all = [0, 1, 2, 3, 4, 5, 6, 7];
    // Two parents hold every piece and sit on the blocks asked of them (busy, so neither makes room).
    const syncsIn4s = async (maxParents: number, have: number[]): Promise<number> => {
      const h = start({ pieces: 8, parents: ['a', 'b'], have, maxParents: () => maxParents });
      await offerParents(h, { a: all, b: all });
      const before = h.supernode.bodies.length;
      for (let t = 0; t < 4_000; t += 50) {
        await h.advance(50);
        while (h.supernode.syncs.length > 0) h.supernode.answer();
      }
      expect(h.parents.get('a')!.requestedPieces().size).toBeGreaterThan(0);
      return h.supernode.bodies.length - before;
    };
    expect(await syncsIn4s(2, [0, 1])).toBe(4_000 / (DEFAULT_TIMINGS.syncMs * QUIET_SYNC_FACTOR));
    // Room for one more parent: the usual period. Below a quarter: twice as often, full pool or not.
    expect(await syncsIn4s(3, [0, 1])).toBe(4_000 / DEFAULT_TIMINGS.syncMs);
    expect(await syncsIn4s(2, [0])).toBe(4_000 / (DEFAULT_TIMINGS.syncMs / 2));
  });

  it('waits for QUIET_SYNC_FACTOR x HAVE_BYTES_PER_SYNC of verified pieces before it syncs for them while its pool is full', async () => {
    const pieces = (8 * HAVE_BYTES_PER_SYNC) / BLOCK_BYTES;
    const all = Array.from({ length: pieces }, (_, i) => i);
    const h = start({ pieces, parents: ['a'], have: all.slice(0, pieces / 4), pieceBytes: BLOCK_BYTES, maxParents: () => 1 });
    await offerParents(h, { a: all });
    const asked = h.supernode.bodies.length;
    // The clock stands still: every sync from here on is one the verified pieces asked for.
    for (let k = 0; k < pieces && h.transfer.state.phase === 'p2p'; k++) {
      h.parents.get('a')!.deliver(1);
      await h.settle();
      while (h.supernode.syncs.length > 0) h.supernode.answer();
    }
    await h.transfer.done;
    // Three quarters to fetch: two syncs for their haves (the last ones go with the final report).
    const per = (QUIET_SYNC_FACTOR * HAVE_BYTES_PER_SYNC) / BLOCK_BYTES;
    const routine = h.supernode.bodies.slice(asked).filter((b) => b.have.length < pieces);
    expect(routine.map((b) => b.have.length)).toEqual([per, per]);
  });

  it('syncs at once when HAVE_BYTES_PER_SYNC of verified pieces are unreported, the same bytes whatever the piece size', async () => {
    const havesPerSync = async (pieceBytes: number): Promise<number[]> => {
      const pieces = (3 * HAVE_BYTES_PER_SYNC) / pieceBytes;
      const all = Array.from({ length: pieces }, (_, i) => i);
      const h = start({ pieces, parents: ['a'], pieceBytes });
      await offerParents(h, { a: all });
      const asked = h.supernode.bodies.length;
      // The clock stands still: every sync from here on is one the verified pieces asked for.
      for (let k = 0; k < 4 * pieces && h.transfer.state.phase === 'p2p'; k++) {
        h.parents.get('a')!.deliver(1);
        await h.settle();
        while (h.supernode.syncs.length > 0) h.supernode.answer();
      }
      await h.transfer.done;
      return h.supernode.bodies.slice(asked).map((b) => b.have.length);
    };
    // Each sync but the final report carries exactly the pieces that make HAVE_BYTES_PER_SYNC.
    const per = (pieceBytes: number): number => HAVE_BYTES_PER_SYNC / pieceBytes;
    expect(await havesPerSync(BLOCK_BYTES)).toEqual([per(BLOCK_BYTES), per(BLOCK_BYTES), expect.any(Number)]);
    expect(await havesPerSync(4 * BLOCK_BYTES)).toEqual([per(4 * BLOCK_BYTES), per(4 * BLOCK_BYTES), expect.any(Number)]);
  });

  it("holds to the wait the supernode's answer asks (periodic syncs and verified haves alike), at most MAX_SYNC_PACE_MS", async () => {
    const PIECE_BLOCKS = HAVE_BYTES_PER_SYNC / 2 / BLOCK_BYTES;
    const syncTimes = async (syncMs: number | undefined, deliver: boolean): Promise<number[]> => {
      const all = Array.from({ length: 64 }, (_, i) => i);
      const h = start({ pieces: 64, parents: ['a'], have: all.slice(0, 16), pieceBytes: HAVE_BYTES_PER_SYNC / 2 });
      await offerParents(h, { a: all }, syncMs === undefined ? {} : { syncMs });
      const t0 = h.clock.now();
      const times: number[] = [];
      for (let t = 0; t < 9_000; t += 50) {
        // Half a piece every 50 ms: HAVE_BYTES_PER_SYNC (two pieces) verified every 200 ms.
        if (deliver && h.transfer.state.phase === 'p2p') h.parents.get('a')!.deliver(PIECE_BLOCKS / 2);
        await h.advance(50);
        while (h.supernode.syncs.length > 0) {
          times.push(h.clock.now() - t0);
          h.supernode.answer(syncMs === undefined ? {} : { syncMs });
        }
      }
      return times;
    };
    const gaps = (times: number[]): number[] => times.slice(1).map((t, k) => t - times[k]!);
    // Unpaced: a sync whenever the haves fill (every 200 ms here), and every syncMs without them.
    expect(new Set(gaps(await syncTimes(undefined, true)).slice(0, 10))).toEqual(new Set([200]));
    expect(new Set(gaps(await syncTimes(undefined, false)))).toEqual(new Set([DEFAULT_TIMINGS.syncMs]));
    // Paced to 2 s: no routine sync sooner, with or without fresh haves.
    for (const deliver of [true, false]) {
      const paced = await syncTimes(2_000, deliver);
      expect(paced.length, `${paced}`).toBeGreaterThanOrEqual(2);
      for (const gap of gaps(paced)) expect(gap, `${paced}`).toBeGreaterThanOrEqual(2_000);
    }
    // An answer asking an hour counts as MAX_SYNC_PACE_MS: the peer still syncs.
    const capped = await syncTimes(3_600_000, false);
    expect(capped.length).toBe(2);
    expect(capped[1]! - capped[0]!).toBeLessThanOrEqual(MAX_SYNC_PACE_MS + TICK_MS);
  });

  it('in endgame asks a piece of at most ENDGAME_COPIES parents at once, whatever the parents do', async () => {
    const ids = ['a', 'b', 'c', 'd'];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(...ids), fc.constantFrom('deliver1', 'deliver', 'close', 'wait')), { minLength: 1, maxLength: 12 }),
        async (steps) => {
          const h = harness({ pieces: 2, parents: ids });
          try {
            await offerParents(h, { a: [0, 1], b: [0, 1], c: [0, 1], d: [0, 1] });
            const check = (): void => {
              for (const piece of [0, 1]) {
                const asking = [...h.parents.values()].filter((p) => !p.isClosed && p.requestedPieces().has(piece));
                expect(asking.length).toBeLessThanOrEqual(ENDGAME_COPIES);
              }
            };
            check();
            for (const [id, action] of steps) {
              const p = h.parents.get(id)!;
              if (action === 'deliver1') p.deliver(1);
              else if (action === 'deliver') p.deliver();
              else if (action === 'close') p.destroy('gone');
              else await h.advance(300);
              await h.settle();
              check();
            }
          } finally {
            await h.transfer.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('cancels the other copy of a piece once one copy is stored; only the blocks that came count as endgame duplicates', async () => {
    const h = start({ pieces: 1, parents: ['a', 'b'] });
    await offerParents(h, { a: [0], b: [0] });
    const [a, b] = [h.parents.get('a')!, h.parents.get('b')!];
    expect(a.requestedPieces()).toEqual(new Set([0]));
    // The second copy waits until the first is late.
    expect(b.requestedPieces()).toEqual(new Set());
    await h.advance(ENDGAME_LAG_MS - 300);
    expect(b.requestedPieces()).toEqual(new Set());
    await h.advance(300);
    expect(b.requestedPieces()).toEqual(new Set([0]));
    b.deliver(1);
    await h.settle();
    a.deliver();
    await h.settle();
    await h.transfer.done;
    expect(b.cancelled).toEqual([[0, BLOCK_BYTES]]);
    expect(h.transfer.stats.duplicateBytes.endgame).toBe(BLOCK_BYTES);
    expect(h.transfer.stats.receivedBytes).toBe(PIECE_BYTES + BLOCK_BYTES);
  });

  it('a cancelled block that the parent had sent already still counts: received, and an endgame duplicate', async () => {
    const h = start({ pieces: 1, parents: ['a', 'b'] });
    await offerParents(h, { a: [0], b: [0] });
    const [a, b] = [h.parents.get('a')!, h.parents.get('b')!];
    await h.advance(ENDGAME_LAG_MS);
    expect(b.requestedPieces()).toEqual(new Set([0]));
    a.deliver();
    await h.settle();
    await h.transfer.done;
    expect(b.cancelled).toContainEqual([0, BLOCK_BYTES]);
    const { receivedBytes, duplicateBytes } = structuredClone(h.transfer.stats);
    b.emit('discarded', 0, BLOCK_BYTES, true);
    expect(h.transfer.stats.duplicateBytes.endgame).toBe(duplicateBytes.endgame + BLOCK_BYTES);
    expect(h.transfer.stats.receivedBytes).toBe(receivedBytes + BLOCK_BYTES);
    // A block it was never asked for (or not by a cancel) is no second copy: counted as unasked.
    b.emit('discarded', 0, BLOCK_BYTES, false);
    expect(h.transfer.stats.duplicateBytes.unasked).toBe(BLOCK_BYTES);
    expect(h.transfer.stats.duplicateBytes.endgame).toBe(duplicateBytes.endgame + BLOCK_BYTES);
    expect(h.transfer.stats.receivedBytes).toBe(receivedBytes + 2 * BLOCK_BYTES);
  });

  it('declines a seed grant of a piece in flight to a live parent, and takes it once that parent stalled', async () => {
    const h = start({ pieces: 2, parents: ['a'], timings: { pieceStallMs: 2_000 } });
    await offerParents(h, { a: [0] });
    expect(h.parents.get('a')!.requestedPieces()).toEqual(new Set([0]));
    await h.advance(500);
    h.supernode.answer({ seedGrants: [0, 1] });
    await h.settle();
    expect(h.supernode.seedAsked).toEqual([1]);
    expect(h.transfer.stats.starvedGrants).toBe(1);
    // The next sync names the declined grant (its lease can go to another piece), the one after does not.
    const before = h.supernode.bodies.length;
    while (h.supernode.bodies.length < before + 1) await h.advance(50);
    expect(h.supernode.bodies[before]!.declined).toEqual([0]);
    h.supernode.answer({ seedGrants: [] });
    while (h.supernode.bodies.length < before + 2) await h.advance(50);
    expect(h.supernode.bodies[before + 1]!.declined).toEqual([]);
    h.supernode.answer({ seedGrants: [1] });
    await h.settle();
    // Piece 0 gets no block for pieceStallMs: its parent is dropped and the grant taken.
    for (let t = 0; t < 2_500; t += 250) {
      await h.advance(250);
      if (h.supernode.syncs.length > 0) h.supernode.answer({ seedGrants: [0, 1] });
    }
    expect(h.parents.get('a')!.closeReason).toBe('stalled');
    expect(h.transfer.stats.stalls).toBe(1);
    expect(h.supernode.seedAsked).toEqual([1, 0]);
    expect(h.transfer.stats.starvedGrants).toBe(1);
    // The stalled parent is reported with the next sync.
    expect(h.supernode.bodies.filter((b) => b.badParents.includes('a'))).toHaveLength(1);
  });

  /** A transfer of two pieces whose hashes it does not know, granted piece 0 of the seed; the hash of that piece. */
  async function grantedUnhashedSeedPiece(): Promise<{ h: ReturnType<typeof start>; hash0: string }> {
    const blob = Buffer.alloc(2 * PIECE_BYTES);
    for (let i = 0; i < blob.length; i += 4) blob.writeUInt32BE((i * 2654435761) >>> 0, i);
    const hash0 = createHash('sha256').update(blob.subarray(0, PIECE_BYTES)).digest('hex');
    const h = start({ pieces: 2, parents: [], hashes: [null, null] });
    await h.settle();
    h.supernode.answerWith({ hashes: [null, null], parents: [], seedGrants: [0], availability: [] });
    await h.settle();
    expect(h.supernode.seedAsked).toEqual([0]);
    return { h, hash0 };
  }

  it('a seed piece whose hash is not known yet waits for a sync sent after it came, not one already out: it is stored, not counted corrupt', async () => {
    const { h, hash0 } = await grantedUnhashedSeedPiece();
    // A periodic sync goes out before the piece comes, and is answered from before the seed had it.
    await h.advance(600);
    expect(h.supernode.syncs).toHaveLength(1);
    h.supernode.serveSeed(0);
    await h.settle();
    h.supernode.answerWith({ hashes: [null, null], parents: [], seedGrants: [], availability: [] });
    await h.settle();
    // The next sync, sent after the piece came, brings its hash.
    expect(h.supernode.syncs).toHaveLength(1);
    h.supernode.answerWith({ hashes: [hash0, null], parents: [], seedGrants: [], availability: [] });
    await h.settle();
    expect(h.transfer.stats.duplicateBytes.corrupt ?? 0).toBe(0);
    expect(h.transfer.counters.seed).toBe(PIECE_BYTES);
  });

  it('a seed piece that comes with its hash (head or trailer) is verified against it and stored without a sync for the hash', async () => {
    const { h, hash0 } = await grantedUnhashedSeedPiece();
    const sent = h.supernode.bodies.length;
    h.supernode.serveSeed(0, { hash: hash0 });
    await h.settle();
    expect(h.transfer.counters.seed).toBe(PIECE_BYTES);
    expect(h.transfer.stats.duplicateBytes.corrupt ?? 0).toBe(0);
    // Stored with no sync answered in between: any sync sent since already reports the piece.
    expect(h.supernode.bodies.slice(sent).every((b) => b.have?.includes(0))).toBe(true);
  });

  it('a seed piece whose bytes do not match the hash sent with it is corrupt, not stored', async () => {
    const { h } = await grantedUnhashedSeedPiece();
    h.supernode.serveSeed(0, { hash: 'f'.repeat(64) });
    await h.settle();
    expect(h.transfer.counters.seed).toBe(0);
    expect(h.transfer.stats.duplicateBytes.corrupt).toBe(PIECE_BYTES);
  });

  it('drops a parent whose piece stalls, counts its partial piece as a stall duplicate, and asks another parent', async () => {
    const h = start({ pieces: 1, parents: ['a', 'b'], timings: { pieceStallMs: 2_000 } });
    await offerParents(h, { a: [0], b: [] });
    const [a, b] = [h.parents.get('a')!, h.parents.get('b')!];
    a.deliver(1);
    await h.settle();
    await h.advance(2_300, 100);
    expect(a.closeReason).toBe('stalled');
    expect(h.transfer.stats.duplicateBytes['stall-reassign']).toBe(BLOCK_BYTES);
    b.announce(0);
    await h.settle();
    expect(b.requestedPieces()).toEqual(new Set([0]));
    b.deliver();
    await h.settle();
    await h.transfer.done;
    expect(h.transfer.state.phase).toBe('done');
  });

  it('keeps a slow parent that goes on sending other blocks while a piece waits, and drops it once the piece waited SLOW_PARENT_STALL_FACTOR stall times', async () => {
    const h = start({ pieces: 8, parents: ['a'], timings: { pieceStallMs: 2_000 } });
    await offerParents(h, { a: [0, 1, 2, 3, 4, 5, 6, 7] });
    const a = h.parents.get('a')!;
    // Piece 0's second block comes; its first never does, while a block of another piece comes every 500 ms.
    a.deliverBlock(0, BLOCK_BYTES);
    await h.settle();
    for (let t = 500; t < SLOW_PARENT_STALL_FACTOR * 2_000 - 250; t += 500) {
      await h.advance(500, 250);
      const other = a.pending.find((r) => r.index !== 0);
      if (other) a.deliverBlock(other.index, other.offset);
      await h.settle();
      // Past pieceStallMs for piece 0, the parent is kept: it is sending.
      expect(a.isClosed).toBe(false);
    }
    expect(SLOW_PARENT_STALL_FACTOR * 2_000).toBeGreaterThan(2_000 + 500);
    expect(h.transfer.stats.stalls).toBe(0);
    expect(a.requestedPieces().has(0)).toBe(true);
    await h.advance(1_000, 250);
    expect(a.closeReason).toBe('stalled');
    expect(h.transfer.stats.stalls).toBe(1);
  });

  it('drops a parent that sends nothing at all after pieceStallMs, slow parents\' patience notwithstanding', async () => {
    const h = start({ pieces: 8, parents: ['a'], timings: { pieceStallMs: 2_000 } });
    await offerParents(h, { a: [0, 1, 2, 3, 4, 5, 6, 7] });
    const a = h.parents.get('a')!;
    await h.advance(1_900, 100);
    expect(a.isClosed).toBe(false);
    await h.advance(500, 100);
    expect(a.closeReason).toBe('stalled');
  });

  it('falls back to the registry after noProgressMs without bytes, fetching only the missing pieces', async () => {
    const h = start({ pieces: 4, parents: [], have: [0], timings: { noProgressMs: 3_000 } });
    await h.advance(3_500, 250);
    await h.transfer.done;
    expect(h.transfer.stats.fallbacks).toBe(1);
    expect(h.transfer.state.phase).toBe('done');
    expect(h.upstreamRanges).toEqual([{ start: PIECE_BYTES, end: 4 * PIECE_BYTES - 1 }]);
    expect(h.transfer.counters.upstream).toBe(3 * PIECE_BYTES);
  });

  /** Fails every sync the transfer sends for `ms` of its clock with `err`, a tick at a time. */
  async function failSyncs(h: Harness, ms: number, err: () => Error): Promise<void> {
    for (let t = 0; t < ms; t += 250) {
      for (const s of h.supernode.syncs.splice(0)) s.fail(err());
      await h.advance(250);
    }
  }
  const refused = () => new PollenError('ERR_SUPERNODE_UNAVAILABLE', 'supernode unreachable: connect ECONNREFUSED', {}, { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) });

  it('falls back to the registry supernodeRefusedMs after the supernode\'s host started refusing its syncs, when nothing comes meanwhile', async () => {
    const h = start({ pieces: 4, parents: [], have: [0] });
    await h.settle();
    await failSyncs(h, 2_500, refused);
    expect(h.transfer.stats.fallbacks).toBe(0);
    await failSyncs(h, 1_000, refused);
    await h.transfer.done;
    expect(h.transfer.stats.fallbacks).toBe(1);
    expect(h.upstreamRanges).toEqual([{ start: PIECE_BYTES, end: 4 * PIECE_BYTES - 1 }]);
  });

  it('a supernode that times out is not taken for one that is down: no fallback before supernodeDeadMs', async () => {
    const h = start({ pieces: 4, parents: [], have: [0] });
    await h.settle();
    await failSyncs(h, 5_000, () => new PollenError('ERR_SUPERNODE_UNAVAILABLE', 'supernode unreachable: Headers Timeout Error'));
    expect(h.transfer.stats.fallbacks).toBe(0);
    expect(h.upstreamRanges).toEqual([]);
  });

  it('a supernode that lost the task and begins it again in the other layout is left: the rest comes from the registry; in the same layout the transfer goes on', async () => {
    const lost = () => new PollenError('ERR_NOT_FOUND', 'unknown task for this peer: create the task again');
    const h = start({ pieces: 4, parents: [], have: [0] });
    await h.settle();
    h.supernode.createTask = async () => ({ digest: h.digest, size: 4 * PIECE_BYTES, pieceSize: PIECE_BYTES / 2, pieceCount: 8, hashes: [] });
    await failSyncs(h, 250, lost);
    await h.transfer.done;
    expect(h.transfer.stats.fallbacks).toBe(1);
    expect(h.upstreamRanges).toEqual([{ start: PIECE_BYTES, end: 4 * PIECE_BYTES - 1 }]);
    // Its 4 pieces are not the supernode's 8: it reports nothing to the task it left.
    const asked = h.supernode.bodies.length;
    await h.advance(60_000, 250);
    expect(h.supernode.bodies.slice(asked)).toEqual([]);

    const same = start({ pieces: 4, parents: [], have: [0] });
    await same.settle();
    await failSyncs(same, 1_000, lost);
    expect(same.transfer.stats.fallbacks).toBe(0);
    expect(same.upstreamRanges).toEqual([]);
  });

  it('a transfer that left a task begun again in the other layout does not report its pieces to it once committed', async () => {
    const lost = () => new PollenError('ERR_NOT_FOUND', 'unknown task for this peer: create the task again');
    for (const layout of ['other', 'same'] as const) {
      const h = start({ pieces: 4, parents: [], timings: { noProgressMs: 3_000 } });
      await h.settle();
      if (layout === 'other') h.supernode.createTask = async () => ({ digest: h.digest, size: 4 * PIECE_BYTES, pieceSize: PIECE_BYTES / 2, pieceCount: 8, hashes: [] });
      await failSyncs(h, 250, lost);
      // In the same layout it goes on, and falls back when nothing came for noProgressMs.
      if (layout === 'same') await failSyncs(h, 4_000, lost);
      await h.transfer.done;
      expect(h.transfer.stats.fallbacks).toBe(1);
      expect(h.transfer.state.phase).toBe('done');
      await h.advance(5_000, 250);
      // Our 4 pieces are not the 8 of the other layout: nothing to say there. In ours, the whole blob is reported.
      const reports = h.supernode.bodies.filter((b) => b.have.length === 4);
      if (layout === 'other') expect(reports).toEqual([]);
      else expect(reports.length).toBeGreaterThan(0);
    }
  });

  it('refused syncs do not end a transfer whose parents keep delivering', async () => {
    const h = start({ pieces: 8, parents: ['a'] });
    await offerParents(h, { a: [0, 1, 2, 3, 4, 5, 6, 7] });
    const a = h.parents.get('a')!;
    for (let k = 0; k < 5; k++) {
      a.deliver(1);
      await failSyncs(h, 1_000, refused);
    }
    expect(h.transfer.stats.fallbacks).toBe(0);
    expect(h.upstreamRanges).toEqual([]);
  });

  it('counts what was in flight when it fell back as fallback overlap, and fetches that piece from the registry', async () => {
    const h = start({ pieces: 2, parents: ['a'], have: [1], timings: { noProgressMs: 3_000 } });
    await offerParents(h, { a: [0, 1] });
    h.parents.get('a')!.deliver(1);
    await h.settle();
    await h.advance(3_500, 250);
    await h.transfer.done;
    expect(h.parents.get('a')!.closeReason).toBe('transfer over');
    expect(h.transfer.stats.duplicateBytes['fallback-overlap']).toBe(BLOCK_BYTES);
    expect(h.upstreamRanges).toEqual([{ start: 0, end: PIECE_BYTES - 1 }]);
    expect(h.transfer.state.phase).toBe('done');
  });

  it('dials no more parents than pieces it lacks, and ENDGAME_COPIES at least', async () => {
    const one = start({ pieces: 1, parents: ['a', 'b', 'c', 'd', 'e'] });
    await offerParents(one, { a: [0], b: [0], c: [0], d: [0], e: [0] });
    expect(one.dialled).toHaveLength(ENDGAME_COPIES);
    const three = start({ pieces: 6, parents: ['a', 'b', 'c', 'd', 'e'], have: [0, 1, 2] });
    await offerParents(three, { a: [3, 4, 5], b: [3, 4, 5], c: [3, 4, 5], d: [3, 4, 5], e: [3, 4, 5] });
    expect(three.dialled).toHaveLength(3);
  });

  it('makes room for a fresh parent by dropping one that kept it choked past the patience', async () => {
    const ids = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9'];
    const h = start({ pieces: 8, parents: ids });
    await h.settle();
    h.supernode.answer({ parents: ids.slice(0, 8).map((id) => ({ peerId: id, wireAddr: id })) });
    await h.settle();
    for (const id of ids.slice(0, 8)) h.parents.get(id)!.connect([0, 1, 2, 3, 4, 5, 6, 7], false);
    await h.advance(1_500, 250);
    h.supernode.answer({ parents: ids.map((id) => ({ peerId: id, wireAddr: id })) });
    await h.settle();
    expect(h.parents.get('p1')!.closeReason).toBe('kept us choked');
    expect(h.dialled).toContain('p9');
  });
});

// A parent that had no piece to give is not scanned again until something changes (P2pTransfer.pump):
// each way a piece it holds can become gettable must reach it at once, or a piece waits for nothing.
describe('a parent that had nothing to give is asked again as soon as a piece it holds becomes gettable', () => {
  it('when the other parent asked for that piece goes away', async () => {
    const h = start({ pieces: 2, parents: ['a', 'b'] });
    await offerParents(h, { a: [0, 1], b: [0] });
    const [a, b] = [h.parents.get('a')!, h.parents.get('b')!];
    expect([a.requestedPieces(), b.requestedPieces()]).toEqual([new Set([0]), new Set()]);
    a.destroy('gone');
    await h.settle();
    expect(b.requestedPieces()).toEqual(new Set([0]));
  });

  it('when the copy of that piece from the other parent fails its hash', async () => {
    const h = start({ pieces: 2, parents: ['a', 'b'] });
    await offerParents(h, { a: [0], b: [0] });
    const [a, b] = [h.parents.get('a')!, h.parents.get('b')!];
    expect(b.requestedPieces()).toEqual(new Set());
    a.deliver(Infinity, true);
    await h.settle();
    expect(a.closeReason).toBe('sent a bad piece');
    expect(b.requestedPieces()).toEqual(new Set([0]));
  });

  it("when that piece's hash is learned", async () => {
    const h = start({ pieces: 2, parents: ['a'], hashes: [null, null], hashPiece: () => 'h' });
    await offerParents(h, { a: [0] });
    const a = h.parents.get('a')!;
    expect(a.requestedPieces()).toEqual(new Set());
    await h.advance(TICK_MS * 2, TICK_MS);
    h.supernode.answer({ hashes: ['h', 'h'] });
    await h.settle();
    expect(a.requestedPieces()).toEqual(new Set([0]));
  });

  it('when it announces a piece we lack', async () => {
    const h = start({ pieces: 2, parents: ['a', 'b'] });
    await offerParents(h, { a: [0], b: [] });
    const b = h.parents.get('b')!;
    expect(b.requestedPieces()).toEqual(new Set());
    b.announce(1);
    await h.settle();
    expect(b.requestedPieces()).toEqual(new Set([1]));
  });
});
