// Keeping freed memory in this VM while a benchmark measures. A guest with virtio-balloon's free
// page reporting hands free 2 MiB blocks back to its host a few seconds after they are freed, and a
// page handed back costs ~1 CPU s of system time per GiB when it is next touched (tmpfs, 6 GiB:
// 3.0-3.7 s written right after it was freed, 9.4-10.2 s after 20-40 s of idle, 3.0 s after 40 s
// of idle with reporting held). touchMemory (touch-memory.ts) warms what a measurement will write,
// but the kernel reports those pages during the measurement itself, so a pull that grows the page
// cache by 8.8 GB over 40 s (the fan-out bed's 256 MiB N = 16 Pollen run: 16 stores, 16 clients'
// copies, the seed's) paid for most of them again, and a system that writes each byte once paid for
// half as many (bench/README.md, sixty-sixth session). A host that has run a while, on bare metal or
// in a VM without reporting, pays for none: holding the reporting makes touchMemory's warm pages
// stay warm, as they would there. The kernel's parameter is the smallest block order it reports;
// one above the largest order its buddy allocator has reports nothing. Restored on release, and on
// SIGINT, SIGTERM or exit (cleanup.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { registerTeardown, unregisterTeardown, type Teardown } from './cleanup.ts';

export const PAGE_REPORTING_ORDER = '/sys/module/page_reporting/parameters/page_reporting_order';
const BUDDYINFO = '/proc/buddyinfo';

export interface MemoryHold {
  /** What was done, for the report: held, or why not. */
  readonly state: 'held' | 'no page reporting' | 'not asked';
  release(): Promise<void>;
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

/**
 * Stops the guest's free page reporting until `release()` (see the top). Where the kernel has no
 * free page reporting there is nothing to hold. A parameter that cannot be written (not root) is an
 * error that names it: a measurement on memory that goes cold would not be the one asked for.
 */
export function holdFreedMemory(paths: { order?: string; buddyinfo?: string } = {}): MemoryHold {
  const orderPath = paths.order ?? PAGE_REPORTING_ORDER;
  let before: string;
  try {
    before = readFileSync(orderPath, 'utf8').trim();
  } catch {
    return { state: 'no page reporting', release: async () => {} };
  }
  const above = orderAboveBuddy(readFileSync(paths.buddyinfo ?? BUDDYINFO, 'utf8'));
  // Held already (another measurement running, or one killed before it could restore): leave the
  // restoring to whoever found the kernel's own setting.
  if (before === String(above)) return { state: 'held', release: async () => {} };
  try {
    writeFileSync(orderPath, String(above));
  } catch (err) {
    throw new Error(`cannot hold this VM's freed memory (${orderPath}): ${(err as Error).message}; run as root, or measure with the VM's reporting as it is (--vm-memory as-is)`);
  }
  let released = false;
  const restore = (): void => {
    if (released) return;
    released = true;
    writeFileSync(orderPath, before);
  };
  const teardown: Teardown = {
    close: async () => restore(),
    closeSync: restore,
  };
  registerTeardown(teardown);
  return {
    state: 'held',
    release: async () => {
      unregisterTeardown(teardown);
      restore();
    },
  };
}
