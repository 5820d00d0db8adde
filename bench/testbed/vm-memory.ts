// Keeping freed memory in this VM while a benchmark measures. A guest with virtio-balloon's free
// page reporting hands free 2 MiB blocks back to its host a few seconds after they are freed, and a
// page handed back costs ~1 CPU s of system time per GiB when it is next touched (tmpfs, 6 GiB:
// 3.7-4.4 s written right after another 6 GiB was deleted, 9.4-10.2 s after 20-40 s of idle, 3.0 s
// after 40 s of idle with reporting held). touchMemory (touch-memory.ts) warms what a measurement
// will write, but the kernel hands those pages back during the measurement itself: a 256 MiB N = 16
// Pollen run on the fan-out bed, which grows the page cache by 8.8 GB (16 stores, 16 clients'
// copies, the seed's), took 15-28 CPU s more with the reporting on, its skopeos alone 8-16 s more
// (bench/README.md, sixty-sixth session). A host that has run a while, on bare metal or in a VM
// without reporting, keeps its memory: holding the reporting lets touchMemory's pages stay warm, as
// they would there. The kernel's parameter is the smallest block order it reports; one above the
// largest order of its buddy allocator reports nothing (-1: no reporting device, nothing to hold).
// The kernel's own value is kept in STATE_FILE (under /run: gone at reboot, with the setting) with
// the holders' pids; the last live holder to release restores it, on a signal or at exit too
// (cleanup.ts), and a hold that finds only dead holders (a bench killed with SIGKILL) takes their
// place, so the value is restored by whoever holds last.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { processAlive } from '../../src/process-alive.ts';
import { registerTeardown, unregisterTeardown, type Teardown } from './cleanup.ts';

export const PAGE_REPORTING_ORDER = '/sys/module/page_reporting/parameters/page_reporting_order';
const BUDDYINFO = '/proc/buddyinfo';
const STATE_FILE = '/run/pollen-bench-vm-memory.json';

/** What was done, for the report: held, or why not. */
export type VmMemoryState = 'held' | 'no page reporting' | 'not asked' | `not held: ${string}`;

export interface MemoryHold {
  readonly state: VmMemoryState;
  release(): Promise<void>;
}

interface HoldRecord {
  /** The kernel's own page_reporting_order, to restore. */
  readonly order: string;
  readonly holders: number[];
}

/** `--vm-memory`'s value: 'hold' (the default) or 'as-is'; anything else is an error that says so. */
export function parseVmMemory(value: string | undefined): 'hold' | 'as-is' {
  if (value === undefined || value === 'hold' || value === 'as-is') return value ?? 'hold';
  throw new Error(`--vm-memory takes 'hold' or 'as-is', got "${value}"`);
}

/** The smallest order no free block reaches: one above the highest order column of /proc/buddyinfo. */
export function orderAboveBuddy(buddyinfo: string): number {
  let columns = 0;
  for (const line of buddyinfo.split('\n')) {
    const counts = line.split(/\s+/).slice(4).filter((c) => /^\d+$/.test(c));
    columns = Math.max(columns, counts.length);
  }
  if (columns === 0) throw new Error('no free-block counts in /proc/buddyinfo');
  return columns;
}

function readRecord(path: string): HoldRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as HoldRecord;
    return typeof r.order === 'string' && Array.isArray(r.holders) ? r : undefined;
  } catch {
    return undefined;
  }
}

const NOTHING_HELD = async (): Promise<void> => {};

/**
 * Stops the guest's free page reporting until `release()` (see the top). Never throws: where it
 * cannot hold (no reporting, not root, a kernel that refuses the order) the state says why, and
 * the benchmark reports it with its figures.
 */
export function holdFreedMemory(paths: { order?: string; buddyinfo?: string; state?: string } = {}): MemoryHold {
  const orderPath = paths.order ?? PAGE_REPORTING_ORDER;
  const statePath = paths.state ?? STATE_FILE;
  let current: string;
  try {
    current = readFileSync(orderPath, 'utf8').trim();
  } catch {
    return { state: 'no page reporting', release: NOTHING_HELD };
  }
  if (current === '-1') return { state: 'no page reporting', release: NOTHING_HELD };
  let above: string;
  try {
    above = String(orderAboveBuddy(readFileSync(paths.buddyinfo ?? BUDDYINFO, 'utf8')));
  } catch (err) {
    return { state: `not held: ${(err as Error).message}`, release: NOTHING_HELD };
  }
  const record = readRecord(statePath);
  let original: string;
  if (current === above) {
    // Held by another benchmark, live or killed: its record has the kernel's own value. Without
    // one, someone set it by hand: it stays as they left it.
    if (!record) return { state: 'held', release: NOTHING_HELD };
    original = record.order;
  } else {
    original = current;
    try {
      writeFileSync(orderPath, above);
    } catch (err) {
      return { state: `not held: cannot write ${orderPath} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, release: NOTHING_HELD };
    }
  }
  const holders = current === above && record ? record.holders.filter(processAlive) : [];
  try {
    writeFileSync(statePath, JSON.stringify({ order: original, holders: [...holders, process.pid] }));
  } catch (err) {
    // Without its record no one could give the kernel its value back: do not hold.
    const why = `cannot write ${statePath} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    if (current === above) return { state: `not held: ${why}`, release: NOTHING_HELD };
    try {
      writeFileSync(orderPath, original);
    } catch (back) {
      return { state: `not held: ${why}; and could not give ${orderPath} back its value ${original} (${(back as Error).message})`, release: NOTHING_HELD };
    }
    return { state: `not held: ${why}`, release: NOTHING_HELD };
  }
  let released = false;
  const restore = (): void => {
    if (released) return;
    released = true;
    try {
      const now = readRecord(statePath);
      const holders = [...(now?.holders ?? [])];
      const mine = holders.indexOf(process.pid);
      if (mine >= 0) holders.splice(mine, 1);
      const others = holders.filter(processAlive);
      if (others.length > 0) return writeFileSync(statePath, JSON.stringify({ order: now?.order ?? original, holders: others }));
      writeFileSync(orderPath, now?.order ?? original);
      rmSync(statePath, { force: true });
    } catch (err) {
      process.stderr.write(`could not give ${orderPath} back its value ${original}: ${(err as Error).message}\n`);
    }
  };
  const teardown: Teardown = { close: async () => restore(), closeSync: restore };
  registerTeardown(teardown);
  return {
    state: 'held',
    release: async () => {
      unregisterTeardown(teardown);
      restore();
    },
  };
}
