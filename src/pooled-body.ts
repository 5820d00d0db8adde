// A response body read into reused buffers. Streaming a blob to a client through a Readable takes a
// fresh buffer for every read (256 KiB), which V8 counts as external memory: for a client pulling a
// blob while it downloads, those buffers alone brought a full mark-compact every few hundred
// milliseconds (--trace-gc). Here the body's reads fill buffers from a pool, the response writes
// each one with a callback, and the callback gives it back: the socket owns a buffer until it
// has written it, and not a moment longer.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { BlockPool } from './p2p/block-pool.ts';

export const BODY_CHUNK_BYTES = 256 * 1024;
/** Shared by every response of the process: 8 MiB kept at most. */
const pool = new BlockPool({ frameBytes: BODY_CHUNK_BYTES, maxFree: 32 });

export interface PooledBody {
  readonly pooled: true;
  /**
   * The body's bytes, each chunk a view of a buffer from `acquire` (or any other buffer, which
   * release ignores). The consumer releases each chunk once it is done with it.
   */
  chunks(acquire: () => Buffer): AsyncIterable<Buffer>;
}

/** A byte range (inclusive end) of a committed blob as a pooled body, read with a content store's `readInto`. */
export function pooledRangeBody(readInto: (target: Uint8Array, offset: number) => Promise<void>, range: { start: number; end: number }): PooledBody {
  return {
    pooled: true,
    async *chunks(acquire) {
      for (let pos = range.start; pos <= range.end; ) {
        const whole = acquire();
        const chunk = whole.subarray(0, Math.min(whole.length, range.end + 1 - pos));
        await readInto(chunk, pos);
        pos += chunk.length;
        yield chunk;
      }
    },
  };
}

/**
 * Sends `body` as the whole answer of a fastify route (status and headers as set on `reply`): the
 * reply is hijacked and written here. The route's 'close' still ends its request as for any other.
 */
export function sendPooledBody(reply: { hijack(): unknown; raw: ServerResponse; statusCode: number; getHeaders(): Record<string, unknown> }, body: PooledBody, options: PooledBodyOptions = {}): void {
  reply.hijack();
  reply.raw.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
  void writePooledBody(reply.raw, body, options);
}

export interface PooledBodyOptions {
  /** Trailers to send once the body has been written (a chunked response, its `trailer` header set). */
  readonly trailers?: () => Record<string, string> | undefined;
}

export function isPooledBody(body: unknown): body is PooledBody {
  return typeof body === 'object' && body !== null && (body as { pooled?: unknown }).pooled === true;
}

/** Where pooled chunks are written: an HTTP response or a socket. */
export interface PooledSink {
  readonly destroyed: boolean;
  write(chunk: Uint8Array, callback?: (err?: Error | null) => void): boolean;
  cork?(): void;
  uncork?(): void;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * Writes `body`'s chunks to `sink` as the sink takes them (each after `frame(length)`, when given,
 * and, with `frame`, before what `after(bytes written so far)` returns, in the same write), each pooled buffer
 * given back once written. Stops early when the sink goes or `stop()` says so; resolves to the
 * body's bytes written. A failed read of the body rejects.
 */
export async function writePooledChunks(sink: PooledSink, body: PooledBody, options: { frame?: (length: number) => Uint8Array; after?: (sent: number) => Uint8Array | undefined; stop?: () => boolean } = {}): Promise<number> {
  const release = (chunk: Uint8Array) => pool.release(chunk);
  let sent = 0;
  for await (const chunk of body.chunks(() => pool.acquire())) {
    if (sink.destroyed || options.stop?.()) {
      release(chunk);
      break;
    }
    sent += chunk.length;
    let flowing: boolean;
    if (options.frame) {
      // The frame's head and its bytes in one write (one TLS record run, one system call).
      sink.cork?.();
      sink.write(options.frame(chunk.length));
      flowing = sink.write(chunk, () => release(chunk));
      const after = options.after?.(sent);
      if (after) flowing = sink.write(after);
      sink.uncork?.();
    } else {
      flowing = sink.write(chunk, () => release(chunk));
    }
    if (!flowing) await drained(sink);
  }
  return sent;
}

/**
 * Writes `body` to `res` (whose head is written or about to be) and ends it. Stops when the client
 * goes away; a read error destroys the response (the client sees the connection fail, never a
 * short body that looks complete).
 */
export async function writePooledBody(res: ServerResponse, body: PooledBody, options: PooledBodyOptions = {}): Promise<void> {
  try {
    await writePooledChunks(res, body);
    if (res.destroyed) return;
    const trailers = options.trailers?.();
    if (trailers) res.addTrailers(trailers);
    res.end();
  } catch (err) {
    res.destroy(err as Error);
  }
}

/** Resolves once `sink` takes writes again, or has closed. */
export function drained(sink: PooledSink): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    sink.on('close', done);
  });
}
