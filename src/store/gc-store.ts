// One call that gives a daemon its content store with a quota and garbage collection: the peer uses
// it for `<data>/content`, the seed can use it for `<data>/seed`, `pollen gc` for a direct run.
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { FsContentStore } from '../fs-content-store.ts';
import { INLINE_PAUSE_MS } from './inline-io.ts';
import { Collector, type CollectorOptions } from './collector.ts';
import { ManagedStore } from './managed-store.ts';
import { parseQuota, resolveQuota } from './quota.ts';

export interface GcStoreOptions extends CollectorOptions {
  /** `20GiB`, `80%` (of the filesystem holding `root`); undefined: no quota. */
  readonly diskQuota?: string | undefined;
}

export interface GcStore {
  readonly store: ManagedStore;
  readonly collector: Collector;
  /** Stops collecting, then closes the store. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens the store at `root` (private: 0700/0600), loads its usage, and starts collecting (abandoned
 * ingests of an earlier run are removed now). With `collect: false` nothing runs on a timer.
 */
export async function openGcStore(deps: { clock: Clock; logger?: Logger }, root: string, options: GcStoreOptions & { collect?: boolean } = {}): Promise<GcStore> {
  const fs = await FsContentStore.open(root, {
    inlineIo: { onBlocked: (ms) => deps.logger?.warn({ ms: Math.round(ms), root }, `content store reads and writes blocked the main thread on the disk; the next ones go through the thread pool for ${INLINE_PAUSE_MS / 1000} s`) },
  });
  const quota = options.diskQuota ? await resolveQuota(parseQuota(options.diskQuota), root) : undefined;
  const store = new ManagedStore({ store: fs, clock: deps.clock, logger: deps.logger }, { quota });
  await store.start();
  const collector = new Collector({ store, clock: deps.clock, logger: deps.logger }, options);
  if (options.collect !== false) await collector.start();
  let closing: Promise<void> | undefined;
  return {
    store,
    collector,
    close: () => (closing ??= collector.close().then(() => store.close())),
  };
}
