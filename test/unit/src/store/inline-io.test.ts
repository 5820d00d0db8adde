import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InlineIo } from '../../../../src/store/inline-io.ts';

describe('InlineIo', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** A manual clock and sleep counter; `call(ms, sleeps)` is an inline call that takes ms and sleeps that often. */
  const manual = () => {
    const c = { t: 0, sleeps: 0, blocked: [] as number[] };
    const io = new InlineIo({ now: () => c.t, sleeps: () => c.sleeps, slowMs: 10, blockedInARow: 3, asyncMs: 1_000, onBlocked: (ms) => c.blocked.push(ms) });
    const call = (ms: number, sleeps: number) => () => {
      c.t += ms;
      c.sleeps += sleeps;
    };
    return { c, io, call };
  };

  it('goes to the thread pool for asyncMs after three calls in a row that were slow and slept', () => {
    const { c, io, call } = manual();
    expect(io.inline).toBe(true);
    io.timed(call(50, 1));
    io.timed(call(50, 2));
    expect(io.inline).toBe(true);
    io.timed(call(40, 1));
    expect(io.pauses).toBe(1);
    expect(c.blocked).toEqual([40]);
    expect(io.inline).toBe(false);
    c.t += 999;
    expect(io.inline).toBe(false);
    c.t += 1;
    expect(io.inline).toBe(true);
  });

  it('stays inline when slow calls are preempted copies: no sleep, not slow, or not in a row', () => {
    const { io, call } = manual();
    for (let i = 0; i < 10; i++) io.timed(call(80, 0)); // preempted on a busy machine: no sleep
    for (let i = 0; i < 10; i++) io.timed(call(10, 1)); // slept, but not slower than slowMs
    for (let i = 0; i < 10; i++) {
      io.timed(call(50, 1));
      io.timed(call(50, 1));
      io.timed(call(0.1, 0)); // a quick copy between breaks the row
    }
    expect(io.pauses).toBe(0);
    expect(io.inline).toBe(true);
  });

  it('reads the sleep counter only around calls that follow a slow one', () => {
    let reads = 0;
    let t = 0;
    let sleeps = 0;
    const io = new InlineIo({ now: () => t, sleeps: () => (reads++, sleeps), slowMs: 10, blockedInARow: 3, asyncMs: 1_000 });
    for (let i = 0; i < 100; i++) io.timed(() => (t += 1)); // quick page-cache copies
    expect(reads).toBe(0);
    io.timed(() => (t += 50)); // slow: a row begins, judged on its time
    expect(reads).toBe(0);
    io.timed(() => (t += 50)); // slow, no sleep: a preempted copy ends the row
    expect(reads).toBe(2);
    io.timed(() => (t += 1));
    expect(reads).toBe(2);
    expect(io.pauses).toBe(0);
    // A slow first call and two slow ones that slept: blocked.
    io.timed(() => (t += 50));
    io.timed(() => ((t += 50), sleeps++));
    io.timed(() => ((t += 50), sleeps++));
    expect(io.pauses).toBe(1);
  });

  it('counts a call that throws (the error is the caller\'s)', () => {
    const { io, c } = manual();
    for (let i = 0; i < 3; i++) {
      expect(() =>
        io.timed(() => {
          c.t += 50;
          c.sleeps++;
          throw new Error('EIO');
        }),
      ).toThrow('EIO');
    }
    expect(io.inline).toBe(false);
  });

  it('never runs inline when disabled', () => {
    expect(new InlineIo({ enabled: false }).inline).toBe(false);
  });

  it('writes and reads the same bytes inline and through the thread pool', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-inline-'));
    const fh = await open(join(dir, 'f'), 'w+');
    try {
      for (const io of [new InlineIo(), new InlineIo({ enabled: false })]) {
        const a = Buffer.from('hello '), b = Buffer.from('world');
        expect(await io.writev(fh, [a, b], 3)).toBe(11);
        const got = Buffer.alloc(16, 0x2e);
        expect(await io.read(fh, got, 2, 11, 3)).toBe(11);
        expect(got.toString('latin1')).toBe('..hello world...');
        expect(await io.read(fh, got, 0, 4, 14)).toBe(0); // past the end
      }
      // A closed handle is an error on either path, never a read of whatever took its descriptor.
      await fh.close();
      await expect(new InlineIo().read(fh, Buffer.alloc(4), 0, 4, 0)).rejects.toThrow();
      await expect(new InlineIo({ enabled: false }).read(fh, Buffer.alloc(4), 0, 4, 0)).rejects.toThrow();
    } finally {
      await fh.close().catch(() => {});
    }
  });
});
