// A batch item's task as the route and the model read it (syncItemTask): by digest, or by its short
// name among the calling peer's own tasks only.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import type { Digest } from '../../../../src/digest.ts';
import { NAMED_ITEM_OPTIONS, taskName } from '../../../../src/p2p/sync-answer.ts';
import { Scheduler } from '../../../../supernode/p2p/scheduler.ts';
import { syncItemTask } from '../../../../supernode/p2p/task-sync.ts';
import { PEER_TTL_MS, Tracker } from '../../../../supernode/p2p/tracker.ts';

const digest = (head: string, tail: string): Digest => `sha256:${head}${tail.repeat(64 - head.length)}` as Digest;

function setup() {
  const clock = new ManualClock(1_000);
  const scheduler = new Scheduler({ clock }, {});
  const tracker = new Tracker({ clock, onDrop: (p) => scheduler.dropPeer(p) });
  const peer = (id: string) => tracker.register(id, `10.0.0.${id.length}:65002`, 4).peer;
  return { clock, scheduler, tracker, peer };
}

/** Peer `a` in two tasks whose digests begin alike: one short name for both. */
function twoTasksOneName() {
  const { scheduler, peer } = setup();
  const a = peer('a');
  const one = digest('00112233445566778', '8');
  const two = digest('00112233445566778', '9');
  scheduler.join(one, 4, a);
  scheduler.join(two, 4, a);
  return { scheduler, a, one, two };
}

describe('a batch item names its task', () => {
  it('by digest: taken as it is, its empty fields read as empty', () => {
    const { peer } = setup();
    const a = peer('a');
    const d = digest('ab', 'c');
    expect(syncItemTask(a, { digest: d, knownHashes: 3 })).toEqual({ digest: d, body: { have: [], wantSeed: 0, badParents: [], knownHashes: 3 } });
  });

  it("by short name: the peer's own task of that name, with the options the name implies", () => {
    const { scheduler, peer } = setup();
    const a = peer('a');
    const d = digest('0123456789abcdef', '1');
    scheduler.join(d, 4, a);
    expect(syncItemTask(a, { task: taskName(d), wantSeed: 2, have: [1] })).toEqual({ digest: d, body: { have: [1], wantSeed: 2, badParents: [], ...NAMED_ITEM_OPTIONS } });
  });

  it("never another peer's task, nor one the peer left no trace of: an unknown task, which the peer creates again", () => {
    const { clock, scheduler, tracker, peer } = setup();
    const a = peer('a');
    const b = peer('b');
    const theirs = digest('fedcba9876543210', '2');
    scheduler.join(theirs, 4, b);
    expect(() => syncItemTask(a, { task: taskName(theirs) })).toThrow(expect.objectContaining({ code: 'ERR_NOT_FOUND' }));
    // A dropped peer's names go with its record's tasks.
    clock.advance(PEER_TTL_MS + 1);
    tracker.sweep();
    expect(tracker.get('b')).toBeUndefined();
    expect(b.taskNames.size).toBe(0);
    expect(() => syncItemTask(b, { task: taskName(theirs) })).toThrow(expect.objectContaining({ code: 'ERR_NOT_FOUND' }));
  });

  it('refuses a name two of its tasks share (the peer names them by digest then), and still takes each by digest', () => {
    const { scheduler, a, one, two } = twoTasksOneName();
    // Joining the same task again does not make its name look shared.
    scheduler.join(one, 4, a);
    expect(() => syncItemTask(a, { task: taskName(one) })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_REQUEST' }));
    expect(syncItemTask(a, { digest: two }).digest).toBe(two);
  });

  it('a task the peer left (its store evicted the blob) is no longer among its tasks nor its names', () => {
    const { scheduler, peer } = setup();
    const a = peer('a');
    const kept = digest('aa', '3');
    const left = digest('bb', '4');
    scheduler.join(kept, 4, a);
    scheduler.join(left, 4, a);
    scheduler.leave(left, 'a');
    expect([...a.tasks]).toEqual([kept]);
    expect([...a.taskNames.keys()]).toEqual([taskName(kept)]);
    expect(() => syncItemTask(a, { task: taskName(left) })).toThrow(expect.objectContaining({ code: 'ERR_NOT_FOUND' }));
    // Pulled again: named again.
    scheduler.join(left, 4, a);
    expect(syncItemTask(a, { task: taskName(left) }).digest).toBe(left);
  });

  it('a name two tasks shared goes to the one left when the other is left', () => {
    const { scheduler, a, one, two } = twoTasksOneName();
    scheduler.leave(one, 'a');
    expect(syncItemTask(a, { task: taskName(two) }).digest).toBe(two);
    scheduler.leave(two, 'a');
    expect(a.tasks.size).toBe(0);
    expect(a.taskNames.size).toBe(0);
  });

  it('a task begun again in another layout is none of its old holders\' until they join it again', () => {
    const { scheduler, peer } = setup();
    const a = peer('a');
    const b = peer('b');
    const d = digest('cc', '5');
    scheduler.join(d, 4, a);
    scheduler.join(d, 4, b);
    // The seed began the blob again with 8 pieces; b joins the new task, a has not yet.
    scheduler.join(d, 8, b);
    expect(b.tasks.has(d)).toBe(true);
    expect(a.tasks.has(d)).toBe(false);
    expect(() => syncItemTask(a, { task: taskName(d) })).toThrow(expect.objectContaining({ code: 'ERR_NOT_FOUND' }));
  });
});
