// Making sure a test bed is torn down however the run ends: a normal close, an exception (callers
// use try/finally), SIGINT/SIGTERM (async teardown, then exit), or process exit (synchronous
// last resort). Each test bed registers itself here while it is open.

export interface Teardown {
  /** Async, idempotent teardown. */
  close(): Promise<void>;
  /** Synchronous best effort for the 'exit' event, when no more I/O can be awaited. */
  closeSync(): void;
}

const open = new Set<Teardown>();
let installed = false;

function onSignal(signal: NodeJS.Signals): void {
  process.stderr.write(`\ntest bed: ${signal} received, cleaning up namespaces and processes...\n`);
  const all = [...open];
  Promise.allSettled(all.map((t) => t.close())).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
}

function onExit(): void {
  for (const t of open) t.closeSync();
  open.clear();
}

export function registerTeardown(t: Teardown): void {
  open.add(t);
  if (!installed) {
    installed = true;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('exit', onExit);
  }
}

export function unregisterTeardown(t: Teardown): void {
  open.delete(t);
  if (open.size === 0 && installed) {
    installed = false;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
}
