import { describe, expect, it } from 'vitest';
import { UploadSlots } from '../../../../peer/p2p/upload-slots.ts';

class Child {
  isClosed = false;
  unchoked = false;
  chokes = 0;
  constructor(
    readonly name: string,
    readonly digest = 'sha256:a',
  ) {}
  unchoke(): void {
    this.unchoked = true;
  }
  choke(): void {
    this.unchoked = false;
    this.chokes++;
  }
}

const children = (...names: string[]): Child[] => names.map((n) => new Child(n, `sha256:${n[0]}`));

describe('UploadSlots', () => {
  it('unchokes the first children up to the slots; the others get freed slots in the order they came, skipping closed ones', () => {
    const slots = new UploadSlots<Child>({ slots: 2 });
    const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((n) => new Child(n)) as [Child, Child, Child, Child, Child];
    for (const x of [a, b, c, d, e]) slots.interested(x);
    expect([a, b, c, d, e].map((x) => x.unchoked)).toEqual([true, true, false, false, false]);
    c.isClosed = true;
    slots.release(a);
    expect(d.unchoked).toBe(true);
    expect(c.unchoked).toBe(false);
    slots.release(e); // left while waiting: its place goes
    slots.release(b);
    expect(slots.unchokedCount).toBe(1);
    expect(slots.waitingCount).toBe(0);
    expect([a, b, c, d, e].every((x) => x.chokes === 0)).toBe(true);
  });

  it("gives a blob without a slot one: the blob with the most gives up its latest, which waits first in line", () => {
    const slots = new UploadSlots<Child>({ slots: 3 });
    const [a1, a2, a3, b1, b2, c1] = children('a1', 'a2', 'a3', 'b1', 'b2', 'c1') as [Child, Child, Child, Child, Child, Child];
    for (const x of [a1, a2, a3]) slots.interested(x);
    slots.interested(b1);
    expect([a1.unchoked, a2.unchoked, a3.unchoked, b1.unchoked]).toEqual([true, true, false, true]);
    expect(a3.chokes).toBe(1);
    // Blob b has its slot now: the next child of it waits, behind a3.
    slots.interested(b2);
    expect(b2.unchoked).toBe(false);
    expect(slots.waitingCount).toBe(2);
    slots.release(a1);
    expect([a3.unchoked, b2.unchoked]).toEqual([true, false]);
    // Blob c: taken from a (two slots) rather than b (one), from its most recently unchoked child.
    slots.interested(c1);
    expect([a2.unchoked, a3.unchoked, b1.unchoked, c1.unchoked]).toEqual([true, false, true, true]);
    expect(a3.chokes).toBe(2);
    expect(slots.unchokedCount).toBe(3);
  });

  it('never takes the last slot of a blob; a freed slot goes first to a waiting child whose blob has none', () => {
    const slots = new UploadSlots<Child>({ slots: 2 });
    const [a1, b1, b2, c1] = children('a1', 'b1', 'b2', 'c1') as [Child, Child, Child, Child];
    for (const x of [a1, b1, b2, c1]) slots.interested(x);
    expect([a1.unchoked, b1.unchoked, b2.unchoked, c1.unchoked]).toEqual([true, true, false, false]);
    expect(a1.chokes + b1.chokes).toBe(0);
    slots.release(a1);
    // b2 came first, but blob c has no slot and b has one.
    expect([b2.unchoked, c1.unchoked]).toEqual([false, true]);
    slots.release(c1);
    expect(b2.unchoked).toBe(true);
  });

  it('gives the slot of a child that wants nothing to a child that does; the idle one keeps it while none waits, and asks again when it wants more', () => {
    const slots = new UploadSlots<Child>({ slots: 2 });
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => new Child(n)) as [Child, Child, Child, Child];
    slots.interested(a);
    slots.interested(b);
    // a holds all we announced: no one waits, so it keeps its slot (no choke to take back later).
    slots.notInterested(a);
    expect([a.unchoked, a.chokes]).toEqual([true, 0]);
    // c wants pieces: the idle a's slot is its, not the busy b's; a is not put in line.
    slots.interested(c);
    expect([a.unchoked, b.unchoked, c.unchoked]).toEqual([false, true, true]);
    expect(slots.waitingCount).toBe(0);
    // a wants pieces again: it waits its turn like any child.
    slots.interested(a);
    expect([a.unchoked, slots.waitingCount]).toEqual([false, 1]);
    // b says it wants nothing while a waits: its slot goes to a at once.
    slots.notInterested(b);
    expect([a.unchoked, b.unchoked, c.unchoked]).toEqual([true, false, true]);
    // A child waiting that wants nothing leaves the line; one interested twice is counted once.
    slots.interested(d);
    slots.interested(d);
    expect(slots.waitingCount).toBe(1);
    slots.notInterested(d);
    expect(slots.waitingCount).toBe(0);
    slots.release(c);
    expect([d.unchoked, slots.unchokedCount]).toEqual([false, 1]);
  });
});
