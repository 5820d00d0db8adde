// One piece from the supernode's seed: ask for it (on the seed channel, or a GET: SupernodeClient)
// and gather its body, which must be exactly `length`
// bytes. The answer may wait for the registry; once bytes flow, a body that stops for `stallMs` is
// given up, so the caller's lease goes back (in the 16-peer bed a stuck body held a piece nobody
// else could get from the seed, and eleven peers fell back to the registry for it). Verification
// against the piece's sha256 is the caller's; the hash the supernode sent with the piece (its head
// or trailer) comes back with the bytes. The body is paced by the host's download budget
// (`--download-rate`) when the request carries one. Chunks may be blocks of the wire's pool (the seed
// channel's): whoever ends up with them gives them back (releaseChunks) once they are not needed;
// a failed fetch gives back what it had gathered.
import type { Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import { releaseBlock } from '../../src/p2p/wire-blocks.ts';
import { pacedChunks, type Throttle } from '../../src/rate/throttle.ts';
import type { SupernodeClient } from './supernode-client.ts';

export interface SeedPieceRequest {
  readonly supernode: string;
  readonly digest: Digest;
  readonly index: number;
  readonly length: number;
  readonly stallMs: number;
  readonly signal: AbortSignal;
  /**
   * Aborts `signal` (its owner's controller): the stall watchdog gives the piece up through it.
   * Without it, a signal of the watchdog's own is joined to `signal`.
   */
  readonly giveUp?: (err: Error) => void;
  /** Hears of every chunk (progress). */
  readonly onChunk?: (bytes: number) => void;
  /** The host's download budget, paid for every chunk before it is taken. */
  readonly throttle?: Throttle | undefined;
}

/** A seed piece's bytes and the sha256 (hex) the supernode sent with them, if it sent one. */
export interface SeedPiece {
  readonly chunks: Buffer[];
  readonly hash: string | undefined;
  /** The supernode's signature of that hash (piece-proof.ts), if it sent one. */
  readonly signature?: Buffer | undefined;
  /** The blob's vouched list of piece hashes, if the seed held the blob verified when it answered. */
  readonly hashList?: string | undefined;
}

/** Gives a seed piece's chunks back to the wire's pool (those that are not from it are left to the GC). */
export function releaseChunks(chunks: readonly Buffer[]): void {
  for (const chunk of chunks) releaseBlock(chunk);
}

/** The body's chunks, in order, `length` bytes in all, and the piece's hash as the supernode sent it. */
export async function fetchSeedPiece(client: Pick<SupernodeClient, 'seedPiece'>, req: SeedPieceRequest): Promise<SeedPiece> {
  const { index, length, stallMs } = req;
  const stall = req.giveUp ? undefined : new AbortController();
  const giveUp = req.giveUp ?? ((err: Error) => stall!.abort(err));
  // One timer for the whole body: each chunk only notes when it came, and the timer, when it
  // fires, waits out the rest of `stallMs` after the last one (a timer cleared and set again per
  // chunk was two timer-list updates per 16 KiB TLS record).
  let lastChunk = 0;
  let watchdog: NodeJS.Timeout | undefined;
  const chunks: Buffer[] = [];
  const watch = (ms: number): void => {
    watchdog = setTimeout(() => {
      const quiet = performance.now() - lastChunk;
      if (quiet >= stallMs) giveUp(new PollenError('ERR_SUPERNODE_UNAVAILABLE', `seed piece ${index} stalled for ${stallMs} ms`));
      else watch(stallMs - quiet);
    }, ms);
  };
  try {
    const signal = stall ? AbortSignal.any([req.signal, stall.signal]) : req.signal;
    const answer = await client.seedPiece(req.supernode, req.digest, index, signal);
    const body = pacedChunks(answer.body as AsyncIterable<Buffer>, req.throttle, signal);
    let n = 0;
    lastChunk = performance.now();
    watch(stallMs);
    for await (const c of body) {
      lastChunk = performance.now();
      const chunk = c as Buffer;
      chunks.push(chunk);
      n += chunk.length;
      if (n > length) throw new PollenError('ERR_SIZE_MISMATCH', `seed piece ${index} is longer than ${length} bytes`);
      req.onChunk?.(chunk.length);
    }
    if (n !== length) throw new PollenError('ERR_SIZE_MISMATCH', `seed piece ${index} ended after ${n} of ${length} bytes`);
    return { chunks, hash: answer.pieceHash(), signature: answer.pieceSignature?.(), hashList: answer.hashList?.() };
  } catch (err) {
    releaseChunks(chunks);
    throw err;
  } finally {
    clearTimeout(watchdog);
  }
}
