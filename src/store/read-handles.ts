// Open read handles of committed blobs, kept between reads. A peer answers each wire request (a
// 256 KiB block) and the seed each chunk of a piece with a positioned read of a committed blob;
// opening and closing the file around every read was three trips through the thread pool where
// one does, and the open and close alone were ~7 % of an uploading peer's CPU (bench:peer-cpu
// profiles). A committed blob never changes (content-addressed, written once,
// renamed into place), so a handle stays valid for as long as the file is not deleted; deleting
// goes through `forget`, which closes the handle once its last read is done.
import { open, type FileHandle } from 'node:fs/promises';

/** How long a handle nobody reads stays open. */
export const READ_HANDLE_IDLE_MS = 2_000;
/** Handles kept open at most (the least recently used idle one is closed beyond it). */
export const MAX_READ_HANDLES = 64;

interface Entry {
  readonly handle: Promise<FileHandle>;
  readers: number;
  lastUse: number;
  /** Forgotten (deleted, or closed by the sweep): close once the last reader is done. */
  dropped: boolean;
}

export class ReadHandles {
  private readonly entries = new Map<string, Entry>();
  private readonly idleMs: number;
  private readonly max: number;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(options: { idleMs?: number; max?: number } = {}) {
    this.idleMs = options.idleMs ?? READ_HANDLE_IDLE_MS;
    this.max = options.max ?? MAX_READ_HANDLES;
  }

  /** Open handles (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /** Runs `read` with an open handle of `path` (opened on first use; open errors are the caller's). */
  async use<T>(path: string, read: (fh: FileHandle) => Promise<T>): Promise<T> {
    let entry = this.entries.get(path);
    if (entry) entry.readers++;
    else {
      const handle = open(path, 'r');
      // Counted as read before the trim, so the handle just opened is never the one closed.
      entry = { handle, readers: 1, lastUse: Date.now(), dropped: false };
      this.entries.set(path, entry);
      const opened = entry;
      // A failed open is not kept: the next read tries again (and sees ENOENT or the cause itself).
      handle.catch(() => this.entries.get(path) === opened && this.entries.delete(path));
      this.trim();
    }
    try {
      return await read(await entry.handle);
    } finally {
      entry.readers--;
      entry.lastUse = Date.now();
      if (entry.dropped) this.closeIfUnused(entry);
      else this.scheduleSweep();
    }
  }

  /** Closes the handle of `path` (now, or once its reads are done): before the file is deleted. */
  forget(path: string): void {
    const entry = this.entries.get(path);
    if (!entry) return;
    this.entries.delete(path);
    entry.dropped = true;
    this.closeIfUnused(entry);
  }

  /** Closes every handle (the store closes). */
  closeAll(): void {
    for (const path of [...this.entries.keys()]) this.forget(path);
    clearTimeout(this.sweeper);
    this.sweeper = undefined;
  }

  private closeIfUnused(entry: Entry): void {
    if (entry.readers === 0) entry.handle.then((fh) => fh.close()).catch(() => {});
  }

  /** Over the cap: close the least recently used handles nobody is reading. */
  private trim(): void {
    if (this.entries.size <= this.max) return;
    const idle = [...this.entries].filter(([, e]) => e.readers === 0).sort((a, b) => a[1].lastUse - b[1].lastUse);
    for (const [path] of idle.slice(0, this.entries.size - this.max)) this.forget(path);
  }

  private scheduleSweep(): void {
    if (this.sweeper) return;
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      const now = Date.now();
      for (const [path, e] of this.entries) if (e.readers === 0 && now - e.lastUse >= this.idleMs) this.forget(path);
      if (this.entries.size > 0) this.scheduleSweep();
    }, this.idleMs);
    this.sweeper.unref();
  }
}
