// Making sure a test bed is torn down however the run ends: a normal close, an exception (callers
// use try/finally), SIGINT/SIGTERM/SIGHUP (async teardown, then exit), or process exit (synchronous
// last resort). Each test bed, and a benchmark's hold on the VM's memory, registers itself here
// while it is open; one teardown that fails does not keep the others from running.

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
  Promise.allSettled(all.map((t) => t.close())).finally(() => process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143));
}

function onExit(): void {
  for (const t of open) {
    try {
      t.closeSync();
    } catch (err) {
      process.stderr.write(`teardown at exit failed: ${(err as Error).message}\n`);
    }
  }
  open.clear();
}

export function registerTeardown(t: Teardown): void {
  open.add(t);
  if (!installed) {
    installed = true;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    process.on('exit', onExit);
  }
}

export function unregisterTeardown(t: Teardown): void {
  open.delete(t);
  if (open.size === 0 && installed) {
    installed = false;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    process.off('exit', onExit);
  }
}
