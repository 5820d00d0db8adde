import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { sha256Digest } from '../../../../src/digest.ts';
import { Bitfield } from '../../../../src/p2p/bitfield.ts';
import { Scheduler } from '../../../../supernode/p2p/scheduler.ts';
import { PEER_TTL_MS, Tracker, type PeerRecord } from '../../../../supernode/p2p/tracker.ts';

const digest = sha256Digest('task');

function setup(options: ConstructorParameters<typeof Scheduler>[1] = {}, random?: () => number) {
  const clock = new ManualClock(1_000);
  const scheduler = new Scheduler({ clock, ...(random ? { random } : {}) }, options);
  const dropped: string[] = [];
  const tracker = new Tracker({ clock, onDrop: (p) => {
    dropped.push(p.peerId);
    scheduler.dropPeer(p);
  } });
  const peer = (id: string, slots = 4): PeerRecord => tracker.get(id) ?? tracker.register(id, `127.0.0.1:${1000 + id.length}`, slots).peer;
  const lookup = (id: string) => tracker.get(id);
  return { clock, scheduler, tracker, peer, lookup, dropped };
}

/** setup() with 20 holders of piece 0 of a 4-piece task and the `askers` joined, holding nothing. */
function withHolders(options: ConstructorParameters<typeof Scheduler>[1], askers: readonly string[]) {
  const s = setup(options);
  const holder = new Bitfield(4);
  holder.set(0);
  for (let k = 0; k < 20; k++) s.scheduler.join(digest, 4, s.peer(`h${k}`), holder);
  for (const a of askers) s.scheduler.join(digest, 4, s.peer(a));
  return s;
}

describe('Scheduler', () => {
  it('never hands out the asker as its own parent, and prefers peers holding more of what it lacks', () => {
    const { scheduler, peer } = setup({ maxParents: 2 });
    const full = Bitfield.full(8);
    const half = new Bitfield(8);
    for (const i of [0, 1, 2, 3]) half.set(i);
    scheduler.join(digest, 8, peer('asker'));
    scheduler.join(digest, 8, peer('half'), half);
    scheduler.join(digest, 8, peer('full'), full);
    const s = scheduler.schedule(digest, 'asker', 0);
    expect(s.parents.map((p) => p.peerId)).toEqual(['full', 'half']);
    expect(s.availability).toEqual([2, 2, 2, 2, 1, 1, 1, 1]);
  });

  it('offers a starved asker a holder of the pieces it lacks before any holder of nothing it lacks, however often it was picked', () => {
    const { scheduler, peer } = setup({ maxParents: 1 });
    const allBut3 = Bitfield.full(64);
    allBut3.clear(3);
    scheduler.join(digest, 64, peer('asker'), Bitfield.fromBase64(64, allBut3.toBase64()));
    // Busy: picked by many askers for the same scarce piece.
    const busy = peer('busy', 4);
    busy.picks = 8;
    scheduler.join(digest, 64, busy, Bitfield.full(64));
    // Fresh, more slots, but holding nothing the asker lacks (and not complete: it may get more later).
    scheduler.join(digest, 64, peer('fresh', 16), Bitfield.fromBase64(64, allBut3.toBase64()));
    // Not starved: the score alone (slots, picks) decides, which early in a fan-out spreads the children.
    expect(scheduler.schedule(digest, 'asker', 0).parents.map((p) => p.peerId)).toEqual(['fresh']);
    expect(scheduler.schedule(digest, 'asker', 0, { seedHas: () => true, starved: true }).parents.map((p) => p.peerId)).toEqual(['busy']);
  });

  it('grants a piece again once no peer holds it: a holder leaving, or joining again with fewer pieces', () => {
    const { scheduler, peer } = setup({ maxSeedGrants: 4 });
    const all = Bitfield.full(3);
    scheduler.join(digest, 3, peer('asker'));
    scheduler.join(digest, 3, peer('h1'), all);
    scheduler.join(digest, 3, peer('h2'), Bitfield.fromBase64(3, all.toBase64()));
    // Every piece held: nothing from the seed.
    expect(scheduler.schedule(digest, 'asker', 4).seedGrants).toEqual([]);
    scheduler.leave(digest, 'h1');
    expect(scheduler.schedule(digest, 'asker', 4).seedGrants).toEqual([]);
    // h2 joins again holding only piece 1: 0 and 2 have no holder left.
    const one = new Bitfield(3);
    one.set(1);
    scheduler.join(digest, 3, peer('h2'), one);
    expect(scheduler.schedule(digest, 'asker', 4).seedGrants).toEqual([0, 2]);
    // The asker got 0: a new peer finds only 2 unheld, and leased; h2 leaving frees 1 for it.
    scheduler.have(digest, 'asker', [0]);
    scheduler.join(digest, 3, peer('late'));
    expect(scheduler.schedule(digest, 'late', 4).seedGrants).toEqual([]);
    scheduler.leave(digest, 'h2');
    expect(scheduler.schedule(digest, 'late', 4).seedGrants).toEqual([1]);
  });

  it('grants seed pieces only for pieces no peer holds, each to one peer at a time until the lease expires', () => {
    const { clock, scheduler, peer } = setup({ maxSeedGrants: 2, seedLeaseMs: 5_000 });
    const held = new Bitfield(4);
    held.set(0);
    scheduler.join(digest, 4, peer('a'));
    scheduler.join(digest, 4, peer('b'));
    scheduler.join(digest, 4, peer('c'), held);
    expect(scheduler.schedule(digest, 'a', 2).seedGrants).toEqual([1, 2]);
    expect(scheduler.schedule(digest, 'b', 2).seedGrants).toEqual([3]);
    // a asks again: its own leases come back (renewed), nothing new beyond its allowance.
    expect(scheduler.schedule(digest, 'a', 2).seedGrants).toEqual([1, 2]);
    scheduler.have(digest, 'a', [1]);
    // Piece 1 is now held by a peer and 2 is leased to a: b keeps only its own lease.
    expect(scheduler.schedule(digest, 'b', 2).seedGrants).toEqual([3]);
    clock.advance(5_001);
    // Every lease ran out: 2 and 3 are grantable again.
    expect(scheduler.schedule(digest, 'b', 2).seedGrants).toEqual([2, 3]);
  });

  it('keeps the seed busy: a peer holding pieces nobody else has still gets new seed pieces, within its allowance', () => {
    const { scheduler, peer } = setup({ maxSeedGrants: 2 });
    scheduler.join(digest, 8, peer('a'));
    scheduler.join(digest, 8, peer('b'));
    expect(scheduler.schedule(digest, 'a', 2).seedGrants).toEqual([0, 1]);
    scheduler.have(digest, 'a', [0, 1]);
    // a holds 0 and 1 alone and b has nothing yet: a still gets the next seed pieces, b the ones after.
    expect(scheduler.schedule(digest, 'a', 2).seedGrants).toEqual([2, 3]);
    expect(scheduler.schedule(digest, 'b', 2).seedGrants).toEqual([4, 5]);
    // Never more than its allowance at once: a's two leases come back, nothing new.
    expect(scheduler.schedule(digest, 'a', 4).seedGrants).toEqual([2, 3]);
  });

  it('keeps granting seed pieces to a peer that is alone in its task', () => {
    const { scheduler, peer } = setup({ maxSeedGrants: 4 });
    scheduler.join(digest, 8, peer('solo'));
    scheduler.have(digest, 'solo', [0, 1, 2]);
    expect(scheduler.schedule(digest, 'solo', 2).seedGrants).toEqual([3, 4]);
  });

  it('grants pieces the seed has not fetched yet only a couple ahead of it', () => {
    const { scheduler, peer } = setup({ maxSeedGrants: 4 });
    scheduler.join(digest, 10, peer('a'));
    scheduler.join(digest, 10, peer('b'));
    const seedHas = (i: number) => i < 3;
    expect(scheduler.schedule(digest, 'a', 4, { seedHas }).seedGrants).toEqual([0, 1, 2, 3]);
    expect(scheduler.schedule(digest, 'b', 4, { seedHas }).seedGrants).toEqual([4]);
  });

  it('lets the seed serve pieces whose only holders were reported bad', () => {
    const { scheduler, peer } = setup();
    scheduler.join(digest, 2, peer('asker'));
    const liar = peer('liar');
    scheduler.join(digest, 2, liar, Bitfield.full(2));
    expect(scheduler.schedule(digest, 'asker', 2).seedGrants).toEqual([]);
    liar.failures++;
    liar.corruptions++;
    expect(scheduler.schedule(digest, 'asker', 2).seedGrants).toEqual([0, 1]);
  });

  it('lets the seed serve a starved asker one piece at a time that peers hold, rarest first, a lease counting as a holder to come', () => {
    const { scheduler, peer } = setup({ maxSeedGrants: 2 });
    scheduler.join(digest, 4, peer('asker'));
    scheduler.join(digest, 4, peer('other'));
    const most = Bitfield.full(4);
    const some = new Bitfield(4);
    some.set(0);
    some.set(2);
    scheduler.join(digest, 4, peer('p1'), most);
    scheduler.join(digest, 4, peer('p2'), some);
    const seedHas = (i: number) => i < 4;
    expect(scheduler.schedule(digest, 'asker', 2, { seedHas }).seedGrants).toEqual([]);
    // Pieces 1 and 3 are held once, 0 and 2 twice: the rarest, and one only (one piece ends a starvation).
    expect(scheduler.schedule(digest, 'asker', 2, { seedHas, starved: true }).seedGrants).toEqual([1]);
    // The lease is the asker's: renewed for it, nothing more while it runs.
    expect(scheduler.schedule(digest, 'asker', 2, { seedHas, starved: true }).seedGrants).toEqual([1]);
    // For another starved peer 1 now counts twice (a holder and a lease), 3 once.
    expect(scheduler.schedule(digest, 'other', 2, { seedHas, starved: true }).seedGrants).toEqual([3]);
    expect(scheduler.schedule(digest, 'other', 2, { seedHas: (i) => i === 0, starved: true }).seedGrants).toEqual([3]);
    // The asker got piece 1: starved again, it gets another, 0, 2 and 3 now alike (3 is held once and leased to other).
    scheduler.have(digest, 'asker', [1]);
    expect(scheduler.schedule(digest, 'asker', 2, { seedHas, starved: true }).seedGrants).toEqual([0]);
  });

  it('shares a scarce piece\'s lease among starved peers, each getting it at most once, and never with a peer that is not starved', () => {
    const { clock, scheduler, peer } = setup({ maxSeedGrants: 4, seedLeaseMs: 5_000 });
    const allBut7 = Bitfield.full(8);
    allBut7.clear(7);
    const lacking = ['a', 'b', 'c'];
    for (const id of lacking) scheduler.join(digest, 8, peer(id), Bitfield.fromBase64(8, allBut7.toBase64()));
    scheduler.join(digest, 8, peer('holder'), Bitfield.full(8));
    // a starves first and takes the lease; b and c starve too and get the same piece, not nothing.
    for (const id of lacking) expect(scheduler.schedule(digest, id, 4, { seedHas: () => true, starved: true }).seedGrants).toEqual([7]);
    // Not starved: the piece is held and leased, so no seed copy.
    scheduler.join(digest, 8, peer('d'), Bitfield.fromBase64(8, allBut7.toBase64()));
    expect(scheduler.schedule(digest, 'd', 4).seedGrants).toEqual([]);
    // a got it: its lease goes, b's and c's stay theirs (renewed, not granted twice).
    scheduler.have(digest, 'a', [7]);
    expect(scheduler.schedule(digest, 'a', 4, { seedHas: () => true, starved: true }).seedGrants).toEqual([]);
    expect(scheduler.schedule(digest, 'b', 4, { seedHas: () => true, starved: true }).seedGrants).toEqual([7]);
    // A lease not renewed runs out; so does a peer's that leaves.
    scheduler.leave(digest, 'b');
    clock.advance(5_001);
    expect(scheduler.schedule(digest, 'd', 4).seedGrants).toEqual([]);
    expect(scheduler.schedule(digest, 'c', 4, { seedHas: () => true, starved: true }).seedGrants).toEqual([7]);
    // New leases counted by kind (the metrics' pollen_supernode_seed_grants_total), renewals not.
    expect(scheduler.seedGrants).toEqual({ unheld: 0, starved: 4 });
  });

  it('drops the leases an asker declined and grants it another piece in the same answer, never a declined one', () => {
    const { scheduler, peer } = setup({ maxSeedGrants: 4 });
    scheduler.join(digest, 4, peer('asker'));
    const some = new Bitfield(4);
    some.set(0);
    some.set(1);
    scheduler.join(digest, 4, peer('p1'), Bitfield.full(4));
    scheduler.join(digest, 4, peer('p2'), some);
    // 2 and 3 are held once: the asker's one starved lease is on 2.
    expect(scheduler.schedule(digest, 'asker', 4, { starved: true }).seedGrants).toEqual([2]);
    // It declined 2 (a live parent has it in flight): that lease goes and 3 comes in its place.
    expect(scheduler.schedule(digest, 'asker', 4, { starved: true, declined: [2] }).seedGrants).toEqual([3]);
    // Both declined: nothing of those two, the next rarest instead.
    expect(scheduler.schedule(digest, 'asker', 4, { starved: true, declined: [3, 2] }).seedGrants).toEqual([0]);
    // A decline frees an unheld piece's lease for other peers too.
    const digest2 = sha256Digest('other task');
    scheduler.join(digest2, 2, peer('a'));
    scheduler.join(digest2, 2, peer('b'));
    expect(scheduler.schedule(digest2, 'a', 1).seedGrants).toEqual([0]);
    expect(scheduler.schedule(digest2, 'b', 1).seedGrants).toEqual([1]);
    expect(scheduler.schedule(digest2, 'a', 1, { declined: [0] }).seedGrants).toEqual([]);
    expect(scheduler.schedule(digest2, 'b', 1).seedGrants).toEqual([1]);
    scheduler.have(digest2, 'b', [1]);
    expect(scheduler.schedule(digest2, 'b', 1).seedGrants).toEqual([0]);
  });

  it('grants a starved asker only pieces the seed already has', () => {
    const { scheduler, peer } = setup({ maxSeedGrants: 4 });
    scheduler.join(digest, 4, peer('asker'));
    scheduler.join(digest, 4, peer('p1'), Bitfield.full(4));
    expect(scheduler.schedule(digest, 'asker', 4, { seedHas: (i) => i === 2, starved: true }).seedGrants).toEqual([2]);
  });

  it('keeps counting the pieces of a parent reported slow, so the seed does not serve them again', () => {
    const { scheduler, peer } = setup();
    scheduler.join(digest, 2, peer('asker'));
    const slow = peer('slow');
    scheduler.join(digest, 2, slow, Bitfield.full(2));
    slow.failures += 3;
    expect(scheduler.schedule(digest, 'asker', 2).seedGrants).toEqual([]);
  });

  it('drops a peer that stops heart-beating and forgets what it held', () => {
    const { clock, scheduler, tracker, peer, dropped } = setup();
    tracker.start();
    scheduler.join(digest, 2, peer('gone'), Bitfield.full(2));
    scheduler.join(digest, 2, peer('alive'));
    for (let t = 0; t < PEER_TTL_MS + 1_000; t += 500) {
      tracker.heartbeat('alive');
      clock.advance(500);
    }
    expect(dropped).toEqual(['gone']);
    const s = scheduler.schedule(digest, 'alive', 2);
    expect(s.parents).toEqual([]);
    expect(s.availability).toEqual([0, 0]);
    expect(s.seedGrants).toEqual([0, 1]);
    tracker.close();
  });

  it('answers a holder of every piece (a last report) with nothing: no scan, no parents, grants or counts', () => {
    const { scheduler, peer } = setup({ maxParents: 4, maxSeedGrants: 4, offerIntervalMs: 0, availabilityIntervalMs: 0 });
    scheduler.join(digest, 4, peer('other'), Bitfield.full(4));
    scheduler.join(digest, 4, peer('asker'));
    scheduler.have(digest, 'asker', [0, 1, 2]);
    const before = scheduler.schedule(digest, 'asker', 4);
    expect(before.parents.map((p) => p.peerId)).toEqual(['other']);
    expect(before.availability).toEqual([2, 2, 2, 1]);
    scheduler.have(digest, 'asker', [3]);
    const scans = scheduler.scans;
    expect(scheduler.schedule(digest, 'asker', 4, { seedHas: () => true, starved: true })).toEqual({ parents: [], seedGrants: [], availability: [] });
    expect(scheduler.scans).toBe(scans);
    // Another asker still gets the holder as a parent.
    scheduler.join(digest, 4, peer('late'));
    expect(scheduler.schedule(digest, 'late', 0).parents.map((p) => p.peerId).sort()).toEqual(['asker', 'other']);
  });

  it('scores at most scanLimit holders per request however large the swarm', () => {
    // The windows' draws (scan-window.ts): start 0 and stride 1, then start 5,000 and stride 1.
    const draws = [0, 0, 0.5, 0];
    const { scheduler, peer } = setup({ scanLimit: 50, maxParents: 5 }, () => draws.shift() ?? 0);
    scheduler.join(digest, 16, peer('asker'));
    for (let i = 0; i < 10_000; i++) scheduler.join(digest, 16, peer(`p${i}`), Bitfield.full(16));
    // Holders alike: each request's parents come from its window of 50 (the asker, p0..p48; then
    // p4999..p5048), not the whole swarm.
    const index = (id: string) => Number(id.slice(1));
    const first = scheduler.schedule(digest, 'asker', 0).parents.map((p) => index(p.peerId));
    expect(first).toHaveLength(5);
    for (const i of first) expect(i).toBeLessThan(49);
    const second = scheduler.schedule(digest, 'asker', 0).parents.map((p) => index(p.peerId));
    expect(second).toHaveLength(5);
    for (const i of second) expect(i >= 4999 && i < 5049).toBe(true);
  });

  it("spreads children over the whole swarm however the askers' wants vary, not within blocks of scanLimit holders", () => {
    // Half the askers want 8 parents and half 1, in turns that follow the scans: a window that moved
    // on by scanLimit (ten blocks of 100 here) gave the blocks the 8-askers' scans fell on all their
    // children, 8 a holder, and the others 1 (simulated, with wants that vary in time: 4 in one
    // block, 11 in the next; scan-window.ts).
    let x = 7;
    const random = (): number => ((x = (x * 48271) % 2147483647) / 2147483647);
    const { scheduler, peer, lookup } = setup({ scanLimit: 100, maxParents: 8, offerPeriodMs: 0 }, random);
    const n = 1000;
    for (let i = 0; i < n; i++) scheduler.join(digest, 64, peer(`p${i}`, 10));
    for (let i = 0; i < n; i++) scheduler.schedule(digest, `p${i}`, 0, { wantParents: i % 10 < 5 ? 8 : 1 });
    const children = Array.from({ length: n }, (_, i) => lookup(`p${i}`)!.children);
    expect(children.reduce((a, b) => a + b, 0)).toBe(500 * 8 + 500);
    // 4.5 a holder on average: none is given twice that.
    expect(Math.max(...children)).toBeLessThanOrEqual(7);
    expect(Math.min(...children)).toBeGreaterThanOrEqual(2);
  });

  it('offers the holder of a piece it alone has held for a while to every asker that lacks it, wherever the window falls', () => {
    // 1,000 holders of pieces 0-62 and one, `lone`, of piece 63 too; the windows (50 of 1,001) are
    // drawn at random, so one in twenty would hold `lone` (rare-pieces.ts).
    let x = 11;
    const random = (): number => ((x = (x * 48271) % 2147483647) / 2147483647);
    const { clock, scheduler, peer } = setup({ scanLimit: 50, maxParents: 4, offerPeriodMs: 0 }, random);
    const most = Bitfield.full(64);
    most.clear(63);
    for (let i = 0; i < 1000; i++) scheduler.join(digest, 64, peer(`p${i}`, 10), Bitfield.fromBase64(64, most.toBase64()));
    scheduler.join(digest, 64, peer('lone', 10), Bitfield.full(64));
    const offeredLone = (asker: string): boolean => scheduler.schedule(digest, asker, 0).parents.some((p) => p.peerId === 'lone');
    // Just got: its children fetch a piece that fresh, so it is not offered out of the window.
    const fresh = Array.from({ length: 40 }, (_, i) => offeredLone(`p${i}`)).filter(Boolean).length;
    expect(fresh).toBeLessThan(10);
    clock.advance(1_000);
    for (let i = 40; i < 80; i++) expect(offeredLone(`p${i}`)).toBe(true);
    // Three holders: no longer rare, back to the window's chances.
    scheduler.have(digest, 'p0', [63]);
    scheduler.have(digest, 'p1', [63]);
    const later = Array.from({ length: 40 }, (_, i) => offeredLone(`p${100 + i}`)).filter(Boolean).length;
    expect(later).toBeLessThan(10);
  });

  it('offers every holder in turn when the swarm is larger than scanLimit, also after holders leave', () => {
    // Every request scans (no offer interval): this is about the window, not how often it moves.
    const { scheduler, peer } = setup({ scanLimit: 10, maxParents: 5, offerIntervalMs: 0 });
    scheduler.join(digest, 16, peer('asker'));
    for (let i = 0; i < 100; i++) scheduler.join(digest, 16, peer(`p${i}`), Bitfield.full(16));
    scheduler.leave(digest, 'p3');
    const offered = new Set<string>();
    for (let k = 0; k < 20; k++) for (const p of scheduler.schedule(digest, 'asker', 0).parents) offered.add(p.peerId);
    // 20 requests x 10 scanned cover all 100 holders: parents come from the whole swarm, not the first 10 to join.
    expect([...offered].some((id) => Number(id.slice(1)) >= 50)).toBe(true);
    expect(offered.size).toBeGreaterThanOrEqual(50);
    expect(offered.has('p3')).toBe(false);
    expect(offered.has('asker')).toBe(false);
  });

  it('scans for parents at most once per offerIntervalMs per asker (a starved asker at once); haves and seed grants count at every sync', () => {
    const { clock, scheduler, peer } = setup({ offerIntervalMs: 400, maxSeedGrants: 2, maxParents: 2, availabilityIntervalMs: 0 });
    scheduler.join(digest, 4, peer('asker'));
    scheduler.join(digest, 4, peer('other'));
    const holder = new Bitfield(4);
    holder.set(0);
    scheduler.join(digest, 4, peer('holder'), holder);
    const first = scheduler.schedule(digest, 'asker', 2);
    expect(first.parents.map((p) => p.peerId)).toEqual(['holder', 'other']);
    expect(first.seedGrants).toEqual([1, 2]);
    const scans = scheduler.scans;
    clock.advance(399);
    scheduler.have(digest, 'other', [1]);
    const soon = scheduler.schedule(digest, 'asker', 2);
    expect(soon.parents).toEqual([]);
    expect(soon.availability).toEqual([1, 1, 0, 0]);
    expect(soon.seedGrants).toEqual([1, 2]);
    // Another asker has its own interval.
    expect(scheduler.schedule(digest, 'other', 2).parents.map((p) => p.peerId).sort()).toEqual(['asker', 'holder']);
    expect(scheduler.schedule(digest, 'asker', 2, { seedHas: () => true, starved: true }).parents.map((p) => p.peerId).sort()).toEqual(['holder', 'other']);
    clock.advance(400);
    expect(scheduler.schedule(digest, 'asker', 2).parents).not.toEqual([]);
    expect(scheduler.scans).toBe(scans + 3);
  });

  it("offers no more parents than the asker would dial (wantParents), and scans for none when it wants none; grants go on", () => {
    const { scheduler, peer } = setup({ maxParents: 3, maxSeedGrants: 1, offerIntervalMs: 400 });
    const holder = new Bitfield(4);
    holder.set(0);
    for (const id of ['a', 'b', 'c']) scheduler.join(digest, 4, peer(id), holder);
    scheduler.join(digest, 4, peer('asker'));
    const scans = scheduler.scans;
    const none = scheduler.schedule(digest, 'asker', 1, { wantParents: 0 });
    expect(none.parents).toEqual([]);
    expect(none.seedGrants).toEqual([1]);
    expect(scheduler.scans).toBe(scans);
    // Wanting none did not start the asker's offer interval: the next sync that wants one scans.
    expect(scheduler.schedule(digest, 'asker', 1, { wantParents: 1 }).parents).toHaveLength(1);
    expect(scheduler.scans).toBe(scans + 1);
    // An asker that says nothing gets the supernode's count.
    expect(scheduler.schedule(digest, 'b', 0, { wantParents: 2 }).parents).toHaveLength(2);
    expect(scheduler.schedule(digest, 'c', 0).parents).toHaveLength(3);
  });

  it('offers maxParents per offerPeriodMs since the asker\'s last offer (to the nearest period, one at least, 8 at most), each asker on its own clock', () => {
    const { clock, scheduler } = withHolders({ maxParents: 1, offerPeriodMs: 250 }, ['asker', 'other']);
    const offered = (asker: string, ask = {}): number => scheduler.schedule(digest, asker, 0, ask).parents.length;
    expect(offered('asker')).toBe(1);
    clock.advance(100);
    expect(offered('asker')).toBe(1);
    clock.advance(374);
    expect(offered('asker')).toBe(1);
    clock.advance(376);
    expect(offered('asker')).toBe(2);
    clock.advance(1_000);
    expect(offered('asker')).toBe(4);
    // What the asker would dial caps the offer, and an offer of fewer still starts the next period.
    clock.advance(1_000);
    expect(offered('asker', { wantParents: 1 })).toBe(1);
    clock.advance(250);
    expect(offered('asker')).toBe(1);
    clock.advance(60_000);
    expect(offered('asker')).toBe(8);
    // Another asker's first offer is maxParents, whenever it comes.
    expect(offered('other')).toBe(1);
    const perAnswer = withHolders({ maxParents: 2, offerPeriodMs: 0 }, ['asker']);
    perAnswer.scheduler.schedule(digest, 'asker', 0);
    perAnswer.clock.advance(5_000);
    expect(perAnswer.scheduler.schedule(digest, 'asker', 0).parents).toHaveLength(2);
  });

  it('offers a paced asker the parents of the wait its answer asks (maxParents per two periods of it) with that answer, and the time since its last offer with the next', () => {
    const { clock, scheduler } = withHolders({ maxParents: 1, offerPeriodMs: 250 }, ['asker']);
    const offered = (aheadMs?: number): number => scheduler.schedule(digest, 'asker', 0, { aheadMs }).parents.length;
    // Told to wait 1.25 s at its first sync: three parents now (one per 500 ms of the wait, rounded up), not one.
    expect(offered(1_250)).toBe(3);
    // After that wait, the time since (five periods) if more than what the next wait is worth.
    clock.advance(1_250);
    expect(offered(400)).toBe(5);
    // A wait of 4 s: 8, the most an answer offers; a sync soon after, unpaced, one.
    expect(offered(4_000)).toBe(8);
    clock.advance(100);
    expect(offered()).toBe(1);
    // What the asker would dial still caps it.
    clock.advance(100);
    expect(scheduler.schedule(digest, 'asker', 0, { aheadMs: 4_000, wantParents: 2 }).parents).toHaveLength(2);
  });

  it('sends an asker the availability at most once per availabilityIntervalMs (empty between), each asker on its own clock', () => {
    const { clock, scheduler, peer } = setup({ availabilityIntervalMs: 1_000 });
    scheduler.join(digest, 4, peer('asker'));
    scheduler.join(digest, 4, peer('other'));
    const holder = new Bitfield(4);
    holder.set(0);
    scheduler.join(digest, 4, peer('holder'), holder);
    expect(scheduler.schedule(digest, 'asker', 0).availability).toEqual([1, 0, 0, 0]);
    clock.advance(999);
    scheduler.have(digest, 'other', [1]);
    // Within the interval: nothing, though the counts changed; another asker gets its own.
    expect(scheduler.schedule(digest, 'asker', 0).availability).toEqual([]);
    expect(scheduler.schedule(digest, 'other', 0).availability).toEqual([1, 1, 0, 0]);
    clock.advance(1);
    expect(scheduler.schedule(digest, 'asker', 0).availability).toEqual([1, 1, 0, 0]);
    expect(scheduler.schedule(digest, 'asker', 0).availability).toEqual([]);
    // One that left and joined again starts afresh.
    scheduler.leave(digest, 'asker');
    scheduler.join(digest, 4, peer('asker'));
    expect(scheduler.schedule(digest, 'asker', 0).availability).toEqual([1, 1, 0, 0]);
  });

  it('rebuilds availability from holdings reported before the task exists (a restarted supernode)', () => {
    const { scheduler, peer, lookup } = setup();
    peer('holder');
    scheduler.rememberHolding(digest, 'holder', { pieces: Bitfield.full(3).toBase64() });
    scheduler.adoptPending(digest, { size: 3 * 524288, pieceSize: 524288, pieceCount: 3 }, lookup);
    scheduler.join(digest, 3, peer('asker'));
    const s = scheduler.schedule(digest, 'asker', 3);
    expect(s.parents.map((p) => p.peerId)).toEqual(['holder']);
    expect(s.seedGrants).toEqual([]);
  });

  it('counts a report only against a parent its schedule offered the reporter in this task, each offer once', () => {
    const { scheduler, peer } = setup();
    const other = sha256Digest('other task');
    scheduler.join(digest, 2, peer('asker'));
    scheduler.join(digest, 2, peer('bystander'));
    scheduler.join(digest, 2, peer('honest'), Bitfield.full(2));
    scheduler.join(other, 2, peer('asker'));
    // Never offered: a report naming it is not believed.
    expect(scheduler.takeOffer(digest, 'asker', 'honest')).toBe(false);
    expect(scheduler.schedule(digest, 'asker', 0).parents.map((p) => p.peerId)).toContain('honest');
    // Offered in this task to this asker: counted once; not in another task, not for another asker.
    expect(scheduler.takeOffer(other, 'asker', 'honest')).toBe(false);
    expect(scheduler.takeOffer(digest, 'bystander', 'honest')).toBe(false);
    expect(scheduler.takeOffer(digest, 'asker', 'honest')).toBe(true);
    expect(scheduler.takeOffer(digest, 'asker', 'honest')).toBe(false);
  });

  it("forgets everything about a peer that stops heart-beating: holdings, offers, pending holdings, tasks it alone held (manual clock)", () => {
    const { clock, scheduler, tracker, peer, lookup, dropped } = setup();
    const pendingDigest = sha256Digest('not a task yet');
    const lonely = sha256Digest('held by the departed alone');
    tracker.start();
    const gone = peer('gone');
    peer('alive');
    scheduler.rememberHolding(pendingDigest, 'gone', { pieces: Bitfield.full(3).toBase64() });
    scheduler.rememberHolding(pendingDigest, 'alive', { pieces: Bitfield.full(3).toBase64() });
    scheduler.join(digest, 2, gone, Bitfield.full(2));
    scheduler.join(digest, 2, lookup('alive')!);
    scheduler.join(lonely, 2, gone, Bitfield.full(2));
    scheduler.schedule(digest, 'gone', 0);
    expect(scheduler.sizes).toEqual({ tasks: 2, pendingTasks: 1, pendingPeers: 2 });
    for (let t = 0; t < PEER_TTL_MS + 1_000; t += 500) {
      tracker.heartbeat('alive');
      clock.advance(500);
    }
    expect(dropped).toEqual(['gone']);
    expect(gone.tasks.size).toBe(0);
    expect(tracker.get('gone')).toBeUndefined();
    // The task only the departed held is gone; its pending holding is pruned, the live peer's kept.
    expect(scheduler.sizes).toEqual({ tasks: 1, pendingTasks: 1, pendingPeers: 1 });
    expect(scheduler.holds(lonely, 'gone')).toBe(false);
    scheduler.adoptPending(pendingDigest, { size: 3 * 524288, pieceSize: 524288, pieceCount: 3 }, lookup);
    scheduler.join(pendingDigest, 3, peer('asker'));
    expect(scheduler.schedule(pendingDigest, 'asker', 0).parents.map((p) => p.peerId)).toEqual(['alive']);
    expect(scheduler.sizes.pendingPeers).toBe(0);
    // A peer registering the departed id later is a new peer: nothing of the old one is offered.
    expect(scheduler.schedule(digest, 'alive', 0).availability).toEqual([0, 0]);
    tracker.close();
  });
});
