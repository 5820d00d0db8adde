// Running a daemon in the foreground: start it, log once, close gracefully on SIGTERM/SIGINT.
import type { Logger } from 'pino';

export interface Closable {
  close(): Promise<void>;
}

export async function runUntilSignal(logger: Logger, closable: Closable): Promise<void> {
  await new Promise<void>((resolve) => {
    let closing = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (closing) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(130);
      }
      closing = true;
      logger.info({ signal }, 'shutting down');
      closable
        .close()
        .catch((err: unknown) => logger.error({ err }, 'error while shutting down'))
        .finally(() => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          resolve();
        });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/**
 * Starts `daemon`; a start that fails half-way (a port in use) closes what it had opened, so the
 * process exits with the error instead of living on without its listener (a peer that had joined
 * its supernode kept running, mirror-less, on its timers).
 */
export async function startOrClose(daemon: Closable & { start(): Promise<void> }): Promise<void> {
  try {
    await daemon.start();
  } catch (err) {
    await daemon.close().catch(() => {});
    throw err;
  }
}
