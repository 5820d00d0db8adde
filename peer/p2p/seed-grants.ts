// The pieces a transfer fetches from the supernode's seed, each for a grant the supernode gave in
// a sync answer. A grant is fetched unless the piece is held or coming: a grant for a piece in
// flight to a live parent (not stalled: ParentLink.isStalled) is declined, since both copies would arrive
// (the bed's duplicates), and the next sync says so, so that the lease can go to another piece; a
// piece on a stalled parent is fetched as a second copy. What the seed
// sends is checked against the piece's sha256 and stored through the transfer's one store path;
// bytes of a fetch given up part way are counted as duplicates by cause.
import type { Logger } from 'pino';
import type { Clock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import { ABORTED, PollenError } from '../../src/errors.ts';
import { pieceRange } from '../../src/p2p/metainfo.ts';
import { API_LIMITS, type MetainfoBody } from '../../src/p2p/supernode-api.ts';
import type { Throttle } from '../../src/rate/throttle.ts';
import type { ParentPool } from './parent-pool.ts';
import { SEED_SOURCE, type DuplicateCause, type PieceLedger } from './piece-ledger.ts';
import { fetchSeedPiece, releaseChunks } from './seed-piece.ts';
import type { TransferClient, TransferEvent } from './transfer-seams.ts';

/**
 * Seed leases a host's transfers hold at once, shared as its parent budget is (at least one each).
 * Their pieces come over the peer's one seed connection (SEED_CONNECTIONS), one after another: two
 * keep that line full (the next piece is leased while one is coming), and more only wait in it while
 * the seed could be sending the piece to a peer whose line is empty. With three per transfer, the
 * last pieces of a layer queued on a few peers' lines, each flow a twelfth of a busy downlink, and
 * the seed's link idled (simulated, the bed's four layers, 64 MiB, N = 16: its last 2.5 MB to one
 * peer over 1 s at 2 MB/s). Simulated, free CPU, 64 MiB, seeds 1-6, three per transfer -> this:
 * four layers N = 1 / 2 / 4 / 8 / 16 6.44 / 6.21 / 6.43 / 7.24 / 7.58 -> 6.45 / 6.17 / 6.20 / 6.73 /
 * 7.38 s; one blob 6.25 / 6.09 / 6.05 / 6.57 / 6.78 -> 6.25 / 5.88 / 6.06 / 6.37 / 6.77 s. One lease
 * per transfer whatever the host runs did as well with layers, but left a lone transfer's line a
 * sync's wait after every piece (one blob, N = 1: 7.09 s). Bed, 64 MiB, with one lease per transfer
 * (alternating against three): N = 8 10.28 / 10.39 / 10.02 -> 9.58 / 10.55 / 9.48 s, N = 4 and 16
 * and 256 MiB N = 4 within their noise.
 */
export const HOST_SEED_LEASES = 2;

/** A parent that sent a block this recently (or connected this recently) is feeding its child. */
export const PARENT_FEEDING_MS = 1_000;

/**
 * The seed leases a transfer asks for (`leases`, its share) while it passes what the seed sends on:
 * none while its parents feed it (a block within PARENT_FEEDING_MS) and it has no children in the
 * blob (`children` undefined: not counted), unless it is starved (the seed's way out for a peer no
 * parent serves). The seed sends a piece about once, to the peer its lease went to, and a peer
 * whose children had all left it (it was behind them, so they dropped it as holding nothing they
 * lacked) kept what the seed sent it: simulated 1,000 peers, the bed's four layers, paced to 2.5 s,
 * seed 2, one such peer got the last piece of the first layer at 5.9 s and every other peer waited
 * for it until 9.4 s. Declining, 9.45 -> 7.58 s (seed 4: 8.45 -> 7.61). A peer no parent feeds (a
 * lone one, one whose first parents have not come, one whose parents hold only part of the blob
 * and stopped) asks as before.
 */
export function seedLeasesWanted(leases: number, at: { children: number | undefined; fedByParents: boolean; starved: boolean }): number {
  return at.children === 0 && at.fedByParents && !at.starved ? 0 : leases;
}

/** Seed leases for each of `active` concurrent transfers: the host's budget shared, at least one. */
export function seedLeasesPerTransfer(active: number): number {
  return Math.max(1, Math.floor(HOST_SEED_LEASES / Math.max(1, active)));
}

/** What the seed fetches need of their transfer. */
export interface SeedGrantsPort {
  readonly client: TransferClient;
  readonly supernode: string;
  readonly digest: Digest;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly ledger: PieceLedger;
  readonly pool: ParentPool;
  readonly pieceStallMs: number;
  /** The host's download budget. */
  readonly downloads?: Throttle | undefined;
  /** Aborted when the transfer stops. */
  readonly signal: AbortSignal;
  readonly onEvent?: ((e: TransferEvent) => void) | undefined;
  meta(): MetainfoBody;
  inP2p(): boolean;
  /** Asks the supernode for news (hashes of pieces the seed fetched after our metainfo). */
  sync(): Promise<void>;
  /** True when `data` matches the piece's known hash. */
  verify(index: number, data: readonly Buffer[]): boolean;
  /** The supernode sent piece `index`'s hash with the piece (kept if none is known yet). */
  learnHash(index: number, hash: string, signature?: Buffer): void;
  /** The supernode sent the blob's vouched list of piece hashes with a piece (as a sync answer would). */
  learnList(hashList: string): void;
  /** Writes the piece; `written` runs once `data` is not needed any more (its blocks go back to the pool). */
  store(index: number, data: readonly Buffer[], written: () => void): Promise<void>;
  wasted(cause: DuplicateCause, bytes: number): void;
  /** Bytes arrived (the transfer's progress clock). */
  progressed(): void;
  /** A fetch ended: its lease is free for the parents again. */
  settled(): void;
}

export class SeedGrants {
  private readonly port: SeedGrantsPort;
  private readonly fetches = new Map<number, AbortController>();
  private readonly declined = new Set<number>();
  /** Grants declined since the last sync went out: the next sync names them, so their leases go. */
  private unreported: number[] = [];
  private readonly controller = new AbortController();

  constructor(port: SeedGrantsPort) {
    this.port = port;
    // The transfer's end stops every fetch: one listener here, and one per fetch on `controller`
    // (AbortSignal.any of three signals per piece cost ~3 % of a lone seed pull's CPU).
    if (port.signal.aborted) this.controller.abort(port.signal.reason);
    else port.signal.addEventListener('abort', () => this.controller.abort(port.signal.reason), { once: true });
  }

  /** The supernode granted piece `index` from its seed. */
  grant(index: number): void {
    const { ledger, pool } = this.port;
    if (!ledger.isMissing(index) || this.fetches.has(index)) return;
    if (ledger.holders(index).some((p) => pool.liveHolder(p, index, this.port.pieceStallMs))) {
      this.owe(index);
      if (!this.declined.has(index)) {
        this.declined.add(index);
        ledger.stats.starvedGrants++;
        this.port.onEvent?.({ kind: 'starved-grant' });
      }
      return;
    }
    void this.fetch(index);
  }

  /** The grants declined since the last sync, taken out for the next one (`restoreDeclines` if it fails). */
  takeDeclines(): number[] {
    const taken = this.unreported;
    this.unreported = [];
    return taken;
  }

  /** A sync that named these declines failed: they are owed again. */
  restoreDeclines(pieces: readonly number[]): void {
    for (const i of pieces) this.owe(i);
  }

  /** The next sync names the decline of `index` (once; at most what the supernode takes). */
  private owe(index: number): void {
    if (!this.unreported.includes(index) && this.unreported.length < API_LIMITS.declinedGrants) this.unreported.push(index);
  }

  /** Gives up the fetch of `index` (another copy is being stored). */
  cancel(index: number): void {
    this.fetches.get(index)?.abort(ABORTED);
  }

  /** Gives up every fetch (the transfer left P2P). */
  stop(): void {
    this.controller.abort(ABORTED);
  }

  private async fetch(index: number): Promise<void> {
    const port = this.port;
    const { ledger } = port;
    const piece = new AbortController();
    const stopped = this.controller.signal;
    const stop = (): void => piece.abort(stopped.reason);
    if (stopped.aborted) stop();
    else stopped.addEventListener('abort', stop, { once: true });
    /** Given up by its stall watchdog (not cancelled here). */
    let stalled = false;
    this.fetches.set(index, piece);
    ledger.request(index, SEED_SOURCE, 'starved-seed-grant');
    let got = 0;
    /** The piece's chunks until the store takes them (and gives them back once written). */
    let held: readonly Buffer[] | undefined;
    try {
      const meta = port.meta();
      const { chunks, hash, signature, hashList } = await fetchSeedPiece(port.client, {
        supernode: port.supernode,
        digest: port.digest,
        index,
        length: pieceRange(meta.size, meta.pieceSize, index).length,
        stallMs: port.pieceStallMs,
        throttle: port.downloads,
        signal: piece.signal,
        giveUp: (err) => {
          stalled = true;
          piece.abort(err);
        },
        onChunk: (n) => {
          got += n;
          ledger.received(n);
          port.progressed();
        },
      });
      held = chunks;
      // The supernode sends the piece's hash with it (as trusted as a sync answer: the same
      // authenticated API). From one that does not, a sync sent after the piece came brings it; a
      // sync already out may answer from before (then one more): an unknown hash is no corrupt piece.
      if (hash !== undefined) port.learnHash(index, hash, signature);
      for (let k = 0; k < 2 && typeof port.meta().hashes[index] !== 'string'; k++) await port.sync();
      if (!port.verify(index, chunks)) {
        port.wasted('corrupt', got);
        got = 0;
        throw new PollenError('ERR_PIECE_DIGEST_MISMATCH', `seed piece ${index} of ${port.digest} failed verification`);
      }
      // The list the piece came with, once the piece checked (a piece of another layout would not).
      if (hashList !== undefined) port.learnList(hashList);
      got = 0;
      held = undefined;
      await port.store(index, chunks, () => releaseChunks(chunks));
    } catch (err) {
      // A fetch given up part way: what came is wasted (the piece came from a parent, or P2P ended).
      port.wasted(!port.inP2p() ? 'fallback-overlap' : ledger.isMissing(index) ? 'late-arrival' : ledger.copyCause(index), got);
      if (port.inP2p() && (stalled || !piece.signal.aborted)) port.logger.debug({ digest: port.digest, piece: index, err: (err as Error).message }, 'seed piece failed');
    } finally {
      stopped.removeEventListener('abort', stop);
      if (held) releaseChunks(held);
      if (this.fetches.get(index) === piece) this.fetches.delete(index);
      ledger.release(index, SEED_SOURCE);
      port.settled();
    }
  }
}
