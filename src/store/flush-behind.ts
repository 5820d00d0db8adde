// Writes a blob's dirty pages to disk while the blob is still arriving, so that its commit's fsync
// has little left to write. A machine with plenty of memory starts writing back only at
// `vm.dirty_background_ratio` (10 % of RAM) or after `vm.dirty_expire_centisecs` (30 s), so a
// pull leaves the whole image dirty in the page cache and every commit's fsync writes its whole
// blob at once, just when the engine, which fsyncs its own copy of the same blob (skopeo,
// containerd), is finishing: on the fan-out bed the peer's fsync of a 100 MiB layer took 1.5 s and
// the client's, sharing the disk with it, ~1.7 s after its last byte (N = 4, 256 MiB). During the
// pull the disk is idle and the network is the bottleneck.
//
// A flush is `fdatasync` in the thread pool, one at a time; the writes go on meanwhile. An error
// is kept and given to the commit: Linux reports a failed writeback once, and marks the pages
// clean, so the commit's own fsync would not see it.

/** Bytes written between two flushes of a blob being written. */
export const FLUSH_BEHIND_BYTES = 8 * 1024 * 1024;

export interface Flushable {
  datasync(): Promise<void>;
}

export class FlushBehind {
  private readonly file: Flushable;
  private readonly everyBytes: number;
  private unflushed = 0;
  private flushing: Promise<void> | undefined;
  private failure: unknown;

  constructor(file: Flushable, everyBytes: number = FLUSH_BEHIND_BYTES) {
    this.file = file;
    this.everyBytes = everyBytes;
  }

  /** Counts bytes written; once `everyBytes` are written since the last flush began, starts one unless one is running. */
  wrote(bytes: number): void {
    this.unflushed += bytes;
    this.start();
  }

  /** A flush that ends with `everyBytes` written meanwhile starts the next at once: the writes may have stopped. */
  private start(): void {
    if (this.flushing || this.unflushed < this.everyBytes || this.failure !== undefined) return;
    this.unflushed = 0;
    this.flushing = this.file
      .datasync()
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.flushing = undefined;
        this.start();
      });
  }

  /** Waits for the flushes under way; throws the first flush's error, if one failed. */
  async settled(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.failure !== undefined) throw this.failure;
  }
}
