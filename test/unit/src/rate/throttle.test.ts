// The download/upload budget on a manual clock: the rate holds over time, the burst goes at once,
// waiters are served first come first served, an aborted waiter leaves the line, and the pacing
// helpers (async bodies, sockets) hold the source back until its bytes are paid for.
import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { TokenBucket } from '../../../../src/p2p/token-bucket.ts';
import { pacedChunks, rateLimiter, readPacer } from '../../../../src/rate/throttle.ts';

const flush = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

/** Moves the clock in steps, letting what each step released run before the next. */
async function step(clock: ManualClock, ms: number, steps: number): Promise<void> {
  for (let i = 0; i < steps; i++) {
    clock.advance(ms);
    await flush();
  }
}

describe('TokenBucket as a shared throttle', () => {
  it('lets the burst through at once and then exactly the rate, second after second', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 1000, burstBytes: 200 });
    let granted = 0;
    const loop = (async () => {
      for (let i = 0; i < 30; i++) {
        await bucket.take(100);
        granted += 100;
      }
    })();
    await flush();
    expect(granted).toBe(200);
    for (let s = 1; s <= 2; s++) {
      await step(clock, 10, 100);
      expect(granted).toBe(200 + s * 1000);
    }
    await step(clock, 100, 8);
    await loop;
    expect(granted).toBe(3000);
  });

  it('serves waiters in order: a later small request does not overtake an earlier large one', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 1000, burstBytes: 1000 });
    expect(bucket.tryTake(1000)).toBe(true);
    const order: string[] = [];
    void bucket.take(800).then(() => order.push('a'));
    void bucket.take(10).then(() => order.push('b'));
    void bucket.take(10).then(() => order.push('c'));
    expect(bucket.tryTake(1)).toBe(false);
    clock.advance(500);
    await flush();
    expect(order).toEqual([]);
    // a at 800 ms; b and c behind it wait for a batch (50 ms of the rate), not for their 10 bytes each.
    clock.advance(300);
    await flush();
    expect(order).toEqual(['a']);
    clock.advance(50);
    await flush();
    expect(order).toEqual(['a', 'b', 'c']);
  });

  it('takes turns between flows chunk by chunk', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 1000, burstBytes: 100 });
    const got = { x: 0, y: 0 };
    const flow = async (name: 'x' | 'y'): Promise<void> => {
      for (;;) {
        await bucket.take(100);
        got[name] += 100;
      }
    };
    void flow('x').catch(() => {});
    void flow('y').catch(() => {});
    await step(clock, 50, 40);
    expect(Math.abs(got.x - got.y)).toBeLessThanOrEqual(100);
    expect(got.x + got.y).toBe(2100);
    bucket.close();
    await flush();
  });

  it('charges a request larger than the burst in full: the next one waits for the debt', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 1000, burstBytes: 100 });
    await bucket.take(1000);
    let done = false;
    void bucket.take(100).then(() => (done = true));
    clock.advance(999);
    await flush();
    expect(done).toBe(false);
    clock.advance(101);
    await flush();
    expect(done).toBe(true);
  });

  it('drops an aborted waiter with the signal\'s reason and lets the next one go in its time', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 1000, burstBytes: 1000 });
    await bucket.take(1000);
    const abort = new AbortController();
    const first = bucket.take(1000, abort.signal);
    let second = false;
    void bucket.take(100).then(() => (second = true));
    abort.abort(new Error('client went away'));
    await expect(first).rejects.toThrow('client went away');
    clock.advance(100);
    await flush();
    expect(second).toBe(true);
    await expect(bucket.take(1, AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });

  it('a flow held at its cap waits once a batch (BATCH_MS of the rate), not once a chunk, and still gets exactly the rate', async () => {
    const clock = new ManualClock();
    let timers = 0;
    const setTimeout = clock.setTimeout.bind(clock);
    clock.setTimeout = (fn, ms) => (timers++, setTimeout(fn, ms));
    // 1 MB/s with the download limiter's burst (a sixteenth of a second: 62,500 bytes), 4 KB chunks.
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 1_000_000, burstBytes: 62_500 });
    let granted = 0;
    let waits = 0;
    const loop = (async () => {
      while (granted < 1_000_000) {
        if (!bucket.tryTake(4_000)) {
          waits++;
          await bucket.take(4_000);
        }
        granted += 4_000;
      }
    })();
    // The rate holds: after half a second, the burst and half a second's bytes, less one batch at most.
    await step(clock, 1, 500);
    expect(granted).toBeLessThanOrEqual(62_500 + 500_000);
    expect(granted).toBeGreaterThanOrEqual(62_500 + 500_000 - 46_875);
    await step(clock, 1, 500);
    await loop;
    // 1 MB after the burst, in batches of 46,875 bytes (three quarters of the burst, below 50 ms of
    // the rate): ~20 waits, where a wait per chunk was 235.
    expect(waits).toBeGreaterThanOrEqual(18);
    expect(waits).toBeLessThanOrEqual(23);
    expect(timers).toBe(waits);
  });

  it('two flows held at the cap take turns a batch at a time: the batch beyond the waiters is shared, not taken by the first back', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 1_000_000, burstBytes: 62_500 });
    const granted = [0, 0];
    let stop = false;
    // Each flow takes 4 KB chunks as fast as the bucket lets it, without yielding between chunks it
    // may take at once: the first to come back after a wake would take the whole batch's rest.
    const flows = [0, 1].map(async (i) => {
      const flow = {};
      while (!stop) {
        if (!bucket.tryTake(4_000, flow)) await bucket.take(4_000, undefined, flow);
        granted[i]! += 4_000;
      }
    });
    await step(clock, 1, 1000);
    stop = true;
    await step(clock, 50, 4);
    await Promise.all(flows);
    // The burst went to the first flow; after it, each had about half of the second's 1 MB.
    const afterBurst = [granted[0]! - 62_500, granted[1]!];
    expect(Math.abs(afterBurst[0]! - afterBurst[1]!)).toBeLessThanOrEqual(2 * 46_875);
    expect(afterBurst[0]! + afterBurst[1]!).toBeGreaterThanOrEqual(1_000_000 - 46_875);
  });

  it('a late timer loses none of the rate: what accrued meanwhile is the waiting flow\'s, up to a batch beyond the burst', async () => {
    const clock = new ManualClock();
    // Every timer fires 40 ms after it was due (a busy event loop).
    const setTimeout = clock.setTimeout.bind(clock);
    clock.setTimeout = (fn, ms) => setTimeout(fn, ms + 40);
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 1_000_000, burstBytes: 62_500 });
    let granted = 0;
    const flow = {};
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        if (!bucket.tryTake(4_000, flow)) await bucket.take(4_000, undefined, flow);
        granted += 4_000;
      }
    })();
    // A wait asks for ~47 ms (a batch) and ends after ~87: ~87 KB accrued, more than the burst.
    await step(clock, 1, 2000);
    // The burst and 2 s of the rate, less at most the batch still to come and a chunk.
    expect(granted).toBeGreaterThanOrEqual(62_500 + 2_000_000 - 86_875 - 4_000);
    expect(granted).toBeLessThanOrEqual(62_500 + 2_000_000 + 4_000);
    stop = true;
    await step(clock, 50, 4);
    await loop;
  });

  it('rejects waiters when closed, and never waits when unlimited', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 10, burstBytes: 10 });
    await bucket.take(10);
    const waiting = bucket.take(10);
    bucket.close();
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    const free = rateLimiter({ clock }, 0);
    expect(free.unlimited).toBe(true);
    for (let i = 0; i < 100; i++) expect(free.tryTake(1 << 30)).toBe(true);
  });
});

describe('pacing helpers', () => {
  it('pacedChunks hands a chunk on only once its bytes are paid for', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 1000, burstBytes: 100 });
    async function* source(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 5; i++) yield Buffer.alloc(100, i);
    }
    const seen: number[] = [];
    const reading = (async () => {
      for await (const c of pacedChunks(source(), bucket)) seen.push(c[0]!);
    })();
    await flush();
    expect(seen).toEqual([0]);
    clock.advance(100);
    await flush();
    expect(seen).toEqual([0, 1]);
    await step(clock, 100, 3);
    await reading;
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });

  it('readPacer pauses a socket after a read it cannot pay for and resumes it once paid', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 1000, burstBytes: 100 });
    const socket = new PassThrough();
    const pace = readPacer(socket as unknown as Socket, bucket)!;
    const received: number[] = [];
    const paid: boolean[] = [];
    socket.on('data', (c: Buffer) => {
      received.push(c.length);
      paid.push(pace(c.length));
    });
    socket.write(Buffer.alloc(100));
    socket.write(Buffer.alloc(100));
    socket.write(Buffer.alloc(100));
    await flush();
    // The first read was paid from the burst, the second was read and then paused the socket.
    expect(received).toEqual([100, 100]);
    expect(paid).toEqual([true, false]);
    expect(socket.isPaused()).toBe(true);
    clock.advance(100);
    await flush();
    expect(received).toEqual([100, 100, 100]);
    socket.destroy();
  });

  it('readPacer is absent without a limit', () => {
    expect(readPacer(new PassThrough() as unknown as Socket, undefined)).toBeUndefined();
  });
});
