import { describe, expect, it } from 'vitest';
import { UploadSlots } from '../../../../peer/p2p/upload-slots.ts';

class Child {
  isClosed = false;
  unchoked = false;
  constructor(readonly name: string) {}
  unchoke(): void {
    this.unchoked = true;
  }
}

describe('UploadSlots', () => {
  it('unchokes the first children up to the slots; the others get freed slots in the order they came, skipping closed ones', () => {
    const slots = new UploadSlots<Child>({ slots: 2 });
    const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((n) => new Child(n)) as [Child, Child, Child, Child, Child];
    for (const x of [a, b, c, d, e]) slots.admit(x);
    expect([a, b, c, d, e].map((x) => x.unchoked)).toEqual([true, true, false, false, false]);
    c.isClosed = true;
    slots.release(a);
    expect(d.unchoked).toBe(true);
    expect(c.unchoked).toBe(false);
    slots.release(e); // left while waiting: its place goes
    slots.release(b);
    expect(slots.unchokedCount).toBe(1);
    expect(slots.waitingCount).toBe(0);
  });
});
