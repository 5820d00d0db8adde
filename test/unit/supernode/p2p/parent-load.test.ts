import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { sha256Digest } from '../../../../src/digest.ts';
import { Bitfield } from '../../../../src/p2p/bitfield.ts';
import { ParentLoad, PARENTS_PER_CHILD } from '../../../../supernode/p2p/parent-load.ts';
import { Scheduler } from '../../../../supernode/p2p/scheduler.ts';
import { Tracker, type PeerRecord } from '../../../../supernode/p2p/tracker.ts';

const digest = sha256Digest('task');

function setup() {
  const clock = new ManualClock(1_000);
  const scheduler = new Scheduler({ clock }, { maxParents: 1 });
  const tracker = new Tracker({ clock, onDrop: (p) => scheduler.dropPeer(p) });
  const peer = (id: string, slots = 4): PeerRecord => tracker.get(id) ?? tracker.register(id, `127.0.0.1:${1000 + id.length}`, slots).peer;
  return { clock, scheduler, tracker, peer };
}

describe('ParentLoad', () => {
  it("counts a child once per parent among its last PARENTS_PER_CHILD offers, until it is done", () => {
    const { peer } = setup();
    const load = new ParentLoad();
    const parents = Array.from({ length: PARENTS_PER_CHILD + 2 }, (_, k) => peer(`p${k}`));
    load.offered('c1', [parents[0]!, parents[1]!]);
    load.offered('c1', [parents[0]!]);
    load.offered('c2', [parents[0]!]);
    expect(parents[0]!.children).toBe(2);
    expect(parents[1]!.children).toBe(1);
    // Offered more parents than a pool holds: its oldest offers are no longer its parents.
    load.offered('c1', parents.slice(2));
    expect(parents[1]!.children).toBe(0);
    expect(parents[0]!.children).toBe(1);
    expect(parents.slice(2).map((p) => p.children)).toEqual(Array(PARENTS_PER_CHILD).fill(1));
    load.done('c1');
    load.done('c1');
    expect(parents.map((p) => p.children)).toEqual([1, ...Array(PARENTS_PER_CHILD + 1).fill(0)]);
    load.clear();
    expect(parents[0]!.children).toBe(0);
  });

  it("the scheduler offers the holder serving fewer children per slot, and a child that completes or leaves frees its parents", () => {
    const { scheduler, peer } = setup();
    const full = Bitfield.full(8);
    scheduler.join(digest, 8, peer('a', 4), full);
    scheduler.join(digest, 8, peer('b', 4), full);
    for (const c of ['c1', 'c2', 'c3']) scheduler.join(digest, 8, peer(c));
    const first = scheduler.schedule(digest, 'c1', 0).parents[0]!.peerId;
    const other = first === 'a' ? 'b' : 'a';
    // Picks (recent offers) halve every second: long after, only the child counts.
    peer(first).picks = 0;
    expect(scheduler.schedule(digest, 'c2', 0).parents[0]!.peerId).toBe(other);
    peer(other).picks = 0;
    // c1 completes: `first` serves nobody now, `other` still serves c2.
    scheduler.have(digest, 'c1', [...full.indexes()]);
    expect(peer(first).children).toBe(0);
    expect(peer(other).children).toBe(1);
    expect(scheduler.schedule(digest, 'c3', 0).parents[0]!.peerId).toBe(first);
    scheduler.leave(digest, 'c2');
    expect(peer(other).children).toBe(0);
  });
});
