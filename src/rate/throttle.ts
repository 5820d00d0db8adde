// The host's download budget (`--download-rate`, and the seed's `--seed-registry-rate`): one token
// bucket (src/p2p/token-bucket.ts, FIFO, so flows sharing it take turns, a batch of the rate at a
// time) and the two ways bytes are paced by it. An async body (a registry GET, a seed piece) is
// read one chunk at a time and its next chunk is asked for only once the last one was paid for, so
// the stream's own backpressure holds the sender back. A socket (a parent on the wire) is paused
// after a read it could not pay for and resumed once paid: at most one socket read is held beyond
// the kernel's buffers, and TCP's window slows the sender. Rate 0 is unlimited and costs nothing.
import type { Socket } from 'node:net';
import type { Clock } from '../clock.ts';
import { TokenBucket } from '../p2p/token-bucket.ts';

/** What pacing needs of a bucket. */
export type Throttle = Pick<TokenBucket, 'tryTake' | 'take' | 'unlimited'>;

/** Burst: a sixteenth of a second at the rate, and at least a few socket reads' worth. */
export const MIN_BURST_BYTES = 256 * 1024;

/** A bucket for `bytesPerSecond` (0 = unlimited), bursting a sixteenth of a second. */
export function rateLimiter(deps: { clock: Clock }, bytesPerSecond: number): TokenBucket {
  return new TokenBucket(deps, { bytesPerSecond, burstBytes: Math.max(MIN_BURST_BYTES, Math.floor(bytesPerSecond / 16)) });
}

/**
 * `source`'s chunks, each handed on once the throttle let its bytes through; `source` itself when
 * there is nothing to pace (a generator around it cost a promise and a microtask per chunk: a TLS
 * body's 16 KiB records, 16,000 a 256 MiB blob on the seed path).
 */
export function pacedChunks<T extends Uint8Array>(source: AsyncIterable<T>, throttle: Throttle | undefined, signal?: AbortSignal): AsyncIterable<T> {
  if (!throttle || throttle.unlimited) return source;
  return paced(source, throttle, signal);
}

async function* paced<T extends Uint8Array>(source: AsyncIterable<T>, throttle: Throttle, signal: AbortSignal | undefined): AsyncGenerator<T> {
  const flow = {}; // this body's turn (TokenBucket's shares)
  for await (const chunk of source) {
    if (!throttle.tryTake(chunk.length, flow)) await throttle.take(chunk.length, signal, flow);
    yield chunk;
  }
}

/**
 * Paces what `socket` receives: call the returned function with each read's length (its 'data'
 * events); every read is paid for, and one that cannot be paid at once pauses the socket until it
 * is (and returns false). Stops with the socket (a waiting payment is dropped). Undefined when
 * there is nothing to pace.
 */
export function readPacer(socket: Socket, throttle: Throttle | undefined): ((bytes: number) => boolean) | undefined {
  if (!throttle || throttle.unlimited) return undefined;
  const gone = new AbortController();
  socket.once('close', () => gone.abort());
  return (bytes) => {
    if (throttle.tryTake(bytes, socket)) return true;
    socket.pause();
    throttle.take(bytes, gone.signal, socket).then(
      () => {
        if (!socket.destroyed) socket.resume();
      },
      () => {},
    );
    return false;
  };
}
