// What a wire connection writes to its socket, in order, one write at a time (WireConnection's
// send). Queued writes would reach the socket as one writev, which TLS first copies into a single
// fresh buffer (up to MAX_INCOMING_REQUESTS blocks: 16 MiB of page faults); one at a time, a block
// is encrypted straight from its pooled buffer, which goes back to the pool once written.
//
// Small messages go together: the first write waits for the end of the turn (TURN_END), and
// consecutive small chunks in the outbox then (a window's requests, a have, a proof, a reject,
// those queued behind a block) are copied into one write: one TLS record and one system call here,
// one read at the other end, where each alone cost ~26 us to send and ~54 us to receive (a
// wake-up) on the test machine. libtorrent corks a connection the same way while it handles a
// message. On the 16-host bed (64 MiB) 8,151 of 19,935 writes were small messages queued behind
// another write and 4,735 more came in the turn of the one before.
import { releaseUpload } from './wire-blocks.ts';

/**
 * Where the first write of a turn waits: a resolved promise's reaction, not queueMicrotask, which
 * wraps each callback in an AsyncResource (its ids, its context pushed and popped): 1.2 % of a
 * peer's CPU on the 16-host bed (64 MiB), a flush each.
 */
const TURN_END = Promise.resolve();

/** Messages shorter than this that wait together are written as one. */
export const SMALL_MESSAGE_BYTES = 1024;
/** At most this much in one merged write: one TLS record. */
const MERGED_MESSAGES_BYTES = 16 * 1024;

/** The part of a socket the outbox writes to. */
export interface OutboxSocket {
  write(chunk: Uint8Array, cb: () => void): unknown;
}

export class WireOutbox {
  private readonly socket: OutboxSocket;
  private readonly queue: Uint8Array[] = [];
  private writing = false;
  private closed = false;

  constructor(socket: OutboxSocket) {
    this.socket = socket;
  }

  /** Queues a whole frame (a pooled upload buffer goes back to its pool once written, or at close). */
  send(chunk: Uint8Array): void {
    if (this.closed) return releaseUpload(chunk);
    this.queue.push(chunk);
    if (this.writing) return;
    this.writing = true;
    void TURN_END.then(this.flushNext);
  }

  /** Nothing more is written; what waits goes back to its pool. */
  close(): void {
    this.closed = true;
    for (const chunk of this.queue.splice(0)) releaseUpload(chunk);
  }

  private readonly flushNext = (): void => {
    let chunk = this.queue.shift();
    if (chunk === undefined || this.closed) {
      this.writing = false;
      return;
    }
    if (chunk.length < SMALL_MESSAGE_BYTES && this.queue.length > 0 && this.queue[0]!.length < SMALL_MESSAGE_BYTES) chunk = this.mergeSmall(chunk);
    const written = chunk;
    this.socket.write(written, () => {
      releaseUpload(written);
      this.flushNext();
    });
  };

  /** `first` and the small chunks after it in the queue, copied into one (each given back). */
  private mergeSmall(first: Uint8Array): Buffer {
    const parts = [first];
    let bytes = first.length;
    while (this.queue.length > 0 && this.queue[0]!.length < SMALL_MESSAGE_BYTES && bytes + this.queue[0]!.length <= MERGED_MESSAGES_BYTES) {
      const next = this.queue.shift()!;
      parts.push(next);
      bytes += next.length;
    }
    const merged = Buffer.concat(parts, bytes);
    for (const p of parts) releaseUpload(p);
    return merged;
  }
}
