// Positioned reads and writes of the content store done on the main thread while they are page-cache
// copies, instead of in libuv's thread pool. An async fs call is a trip through the pool (a futex
// wake of a worker, its syscall, an eventfd wake of the loop, a FileHandle promise), and a peer
// makes one per 256 KiB block it stores, streams to its client or uploads: on the 2-core bed at
// N = 16 (64 MiB, 13 alternating pairs) doing them inline took the daemons' CPU from a median of
// 23.4 to 22.0 s and the all-done from 17.1 to 16.3 s; a downloading peer on loopback (bench:
// peer-cpu) spends 13 % less CPU per byte, an uploading one ~20 % less.
//
// A call that blocks on the disk (a cold read, a write throttled by dirty-page writeback) stalls
// the whole event loop, so each inline call is watched: one that took longer than `slowMs` and
// in which the process slept (a voluntary context switch) blocked; `blockedInARow` of those in a
// row (the first of a row judged on its time alone) send the calls of the next `asyncMs` to the
// thread pool, where a slow disk costs only its wait. Wall time alone cannot tell: on a saturated machine a page-cache copy is often preempted
// for 20-100 ms (the 16-host bed: ~115 such calls a peer a run, ~15 of them with some thread of
// the process sleeping meanwhile; three in a row 0-1 times a run), while a blocked disk makes every
// call slow.
import { readSync, writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';

/** An inline call slower than this, in which the process slept, may have blocked on the disk. */
export const INLINE_SLOW_MS = 10;
/** That many of those in a row did. */
export const INLINE_BLOCKED_IN_A_ROW = 3;
/** How long the calls after that go through the thread pool. */
export const INLINE_PAUSE_MS = 10_000;

export interface InlineIoOptions {
  /** Milliseconds, monotonic (tests pass a manual clock). */
  now?: () => number;
  /** The process's voluntary context switches so far (tests pass a counter). */
  sleeps?: () => number;
  slowMs?: number;
  blockedInARow?: number;
  asyncMs?: number;
  /** False: every call through the thread pool (the behaviour before inline calls). */
  enabled?: boolean;
  /** Hears when inline calls blocked (the last one's ms) and the next go to the thread pool: the daemons log it. */
  onBlocked?: (ms: number) => void;
}

export class InlineIo {
  private readonly now: () => number;
  private readonly sleeps: () => number;
  private readonly slowMs: number;
  private readonly blockedInARow: number;
  private readonly asyncMs: number;
  private readonly enabled: boolean;
  private readonly onBlocked: ((ms: number) => void) | undefined;
  private asyncUntil = -Infinity;
  private blocked = 0;
  /** Times inline calls blocked and the next `asyncMs` went to the thread pool. */
  pauses = 0;

  constructor(options: InlineIoOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.sleeps = options.sleeps ?? (() => process.resourceUsage().voluntaryContextSwitches);
    this.slowMs = options.slowMs ?? INLINE_SLOW_MS;
    this.blockedInARow = options.blockedInARow ?? INLINE_BLOCKED_IN_A_ROW;
    this.asyncMs = options.asyncMs ?? INLINE_PAUSE_MS;
    this.enabled = options.enabled ?? true;
    this.onBlocked = options.onBlocked;
  }

  /** Whether the next call runs inline. */
  get inline(): boolean {
    return this.enabled && this.now() >= this.asyncUntil;
  }

  /** Writes `chunks` at `position`; resolves with the bytes written (a short write is the caller's). */
  async writev(fh: FileHandle, chunks: readonly Uint8Array[], position: number): Promise<number> {
    if (!this.inline) return (await fh.writev(chunks as Uint8Array[], position)).bytesWritten;
    return this.timed(() => writevSync(fh.fd, chunks as Uint8Array[], position));
  }

  /** Reads up to `length` bytes at `position` into `target` at `offset`; resolves with the bytes read. */
  async read(fh: FileHandle, target: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    if (!this.inline) return (await fh.read(target, offset, length, position)).bytesRead;
    return this.timed(() => readSync(fh.fd, target, offset, length, position));
  }

  /**
   * Runs a synchronous call, watching whether it blocked (its error is the caller's). The sleep
   * counter is read only once a row has begun: the first slow call of a row counts on its time
   * alone, the rest must also have slept. `process.resourceUsage()` around every call was 5 % of a
   * downloading peer's main thread (bench:peer-cpu's profile); now a run reads it around the few
   * calls that follow a slow one.
   */
  timed<T>(call: () => T): T {
    const start = this.now();
    const watched = this.blocked > 0;
    const slept = watched ? this.sleeps() : 0;
    try {
      return call();
    } finally {
      const end = this.now();
      if (end - start <= this.slowMs || (watched && this.sleeps() === slept)) this.blocked = 0;
      else if (++this.blocked >= this.blockedInARow) {
        this.blocked = 0;
        this.pauses++;
        this.asyncUntil = end + this.asyncMs;
        this.onBlocked?.(end - start);
      }
    }
  }
}
