import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../../../bench/sim/event-queue.ts';

describe('EventQueue', () => {
  it('runs events in time order, ties in insertion order, and advances the clock', () => {
    const q = new EventQueue();
    const seen: string[] = [];
    q.at(30, () => seen.push(`c@${q.now}`));
    q.at(10, () => seen.push(`a@${q.now}`));
    q.at(10, () => seen.push(`b@${q.now}`));
    q.at(20, () => q.after(5, () => seen.push(`d@${q.now}`)));
    q.run();
    expect(seen).toEqual(['a@10', 'b@10', 'd@25', 'c@30']);
    expect(q.now).toBe(30);
    expect(q.eventsRun).toBe(5);
  });

  it('skips cancelled events', () => {
    const q = new EventQueue();
    const seen: number[] = [];
    const e = q.at(5, () => seen.push(5));
    q.at(6, () => seen.push(6));
    q.cancel(e);
    q.run();
    expect(seen).toEqual([6]);
  });

  it('stops at a time limit or when asked, leaving later events pending', () => {
    const q = new EventQueue();
    let n = 0;
    for (let t = 1; t <= 10; t++) q.at(t, () => n++);
    q.run({ untilMs: 4 });
    expect(n).toBe(4);
    q.run({ stop: () => n === 6 });
    expect(n).toBe(6);
    expect(q.pending).toBe(4);
  });

  it('refuses to schedule in the past', () => {
    const q = new EventQueue();
    q.at(10, () => expect(() => q.at(5, () => {})).toThrow(/in the past/));
    q.run();
  });

  it('keeps order across many random insertions (heap property)', () => {
    const q = new EventQueue();
    const times: number[] = [];
    let x = 12345;
    for (let i = 0; i < 2000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      q.at(x % 10_000, () => times.push(q.now));
    }
    q.run();
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(times).toHaveLength(2000);
  });
});
