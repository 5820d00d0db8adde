// A transfer's conversation with the supernode that owns its blob: one sync at a time carries the
// pieces verified since the last answered one, the parents to report and what the transfer wants
// of the seed; the answer (parents, seed grants, piece hashes, availability) goes back to the
// transfer. A failed sync keeps its pieces and reports for the next one; an unknown task (the
// supernode restarted or dropped us) is created again; refusals of the supernode's host are timed
// (refusedSince), for the transfer's quick fallback when the supernode is down, not slow. When the transfer has every piece, the last
// report names all of them and is tried again if it fails. Time and the supernode come through
// the transfer's seams (transfer-seams.ts), so the simulation runs this code too.
import type { Logger } from 'pino';
import type { Clock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import { toPollenError } from '../../src/errors.ts';
import { MAX_SYNC_PACE_MS, type MetainfoBody, type SyncRequest, type SyncResponse } from '../../src/p2p/supernode-api.ts';
import { connectionRefused, refusedMs } from './supernode-answers.ts';
import type { TransferClient } from './transfer-seams.ts';

/**
 * Verified bytes not yet reported that make the transfer sync at once (at least one piece), in
 * bytes so that the piece size does not set how often peers sync. Fresh haves made the
 * supernode's offers good while syncs cost nothing (simulated 1,000 peers, 64 MiB, 512 KiB
 * pieces, the API free: 1.77 x T* at 2 MiB, 1.99 at 4 MiB). With the API's bytes on the
 * supernode's links and piece proofs (a child asks its parents for what they announce, hash known
 * or not), a sync costs ~800 bytes of the supernode's links, most of it HTTP around small
 * answers, and one every 2 MiB was two thirds of all syncs: simulated, 1,000 peers 1.66-1.67 x T*
 * at 2 MiB (seeds 1-3), 1.61 at 4 MiB, 1.60-1.61 at 8 and 16 MiB (the API 0.31 -> 0.21 x S each
 * way); 3,000 peers 2.12 at 2 MiB, 2.09 at 4, 1.98 at 8, 2.00 at 16. At 100 Mbit/s 8 MiB comes
 * every ~0.7 s, about as often as the periodic sync (DEFAULT_TIMINGS.syncMs).
 */
export const HAVE_BYTES_PER_SYNC = 8 * 1024 * 1024;

/**
 * How often a transfer syncs: twice as often while it holds less than a quarter of the blob. Early
 * in a fan-out the few peers holding the newest pieces are what everyone needs, and a sync is how a
 * child hears of them; later its parents' haves carry most of that news. Simulated 64 MiB, free
 * CPU: N = 300 8.15 -> 7.75 s, N = 1,000 8.98 -> 8.38 s (1.67 -> 1.56 x T*); syncing every 250 ms
 * throughout gained no more (7.79, 8.22 s) for twice the supernode's work. `quiet`: see QUIET_SYNC_FACTOR.
 * Four times as often while it holds nothing (every tick at the default 1 s): its downlink idles
 * until its parents have something for it, and the supernode offers parents at a rate since the
 * last offer (supernode/p2p/scheduler-options.ts offerPeriodMs), so each tick's sync brings the
 * next parent a period sooner and not the whole credit later. Simulated 64 MiB in 128 KiB pieces,
 * seed 1: 1,000 peers 6.73 -> 6.72 s (seed 2: 6.95 -> 6.85), median 6.58 -> 6.52; 3,000 peers
 * 7.30 -> 7.03 s (1.36 -> 1.31 x T*), median 7.18 -> 6.94, the requests on the supernode's
 * downlink 0.139 -> 0.132 x S. The supernode's pacing (`paceMs`) still holds a large swarm's syncs.
 */
export function syncInterval(syncMs: number, have: number, pieceCount: number, quiet = false): number {
  if (have === 0) return syncMs / 4;
  if (have * 4 < pieceCount) return syncMs / 2;
  return quiet ? syncMs * QUIET_SYNC_FACTOR : syncMs;
}

/**
 * How much less often a transfer syncs quietly, periodically and for its verified haves: once it
 * holds a quarter of the blob and its parent pool is full (it would dial none of the parents an answer
 * could offer): its syncs then mostly report haves to the scheduler. At 10,000 peers every sync is
 * ~275 bytes on the supernode host's downlink, which also brings the seed's stream from the
 * registry, and the pacer lets 8,000 through a second. Simulated 64 MiB, one blob: 10,000 peers
 * (seeds 1 / 2) all-done 8.47 / 8.45 -> 8.35 / 8.36 s, median 8.25 / 8.24 -> 8.19 / 8.18, the
 * seed's last piece 6.72 / 6.71 -> 6.66 / 6.65 s; 3 x: 8.36 s (seed 1). 1,000 peers alike (7.32 s).
 */
export const QUIET_SYNC_FACTOR = 2;

/**
 * No verified piece for this long, with pieces missing: the peer tells the supernode it is starved,
 * and the seed backs up the parents that hold what it lacks but do not deliver it (all slots busy,
 * links full). Falling back to the registry (noProgressMs) is for when that fails too: on the
 * CPU-starved 16-host bed, 40 such fallbacks sent the registry 6.9 x S.
 */
export const STARVED_MS = 5_000;

/** The wait an answer asks for, within [0, MAX_SYNC_PACE_MS] (a malformed value asks none). */
export function pacedMs(res: SyncResponse): number {
  const ms = res.syncMs;
  return typeof ms === 'number' && ms > 0 ? Math.min(ms, MAX_SYNC_PACE_MS) : 0;
}

/** Tries of the report that a transfer has every piece (1 s, then 2 s apart). */
export const FINAL_REPORT_ATTEMPTS = 3;

/** What the sync asks of the transfer it belongs to. */
export interface SyncPort {
  readonly client: TransferClient;
  readonly supernode: string;
  readonly digest: Digest;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Whether syncing is still wanted (the transfer is fetching over P2P). */
  wanted(): boolean;
  /** Whether the parent pool would dial none of the parents an answer could offer (see QUIET_SYNC_FACTOR). */
  poolFull(): boolean;
  /** The rest of the request (reports taken out of the parent pool, seed wishes, hashes known). */
  request(): Omit<SyncRequest, 'have' | 'peerId'>;
  /** The request failed: its reports are owed again. */
  unsent(request: Omit<SyncRequest, 'have' | 'peerId'>): void;
  /**
   * The supernode no longer knows the task: create it again. False: the supernode began it in
   * another layout, where our piece indexes name other bytes: the transfer left it (no more syncs,
   * no final report).
   */
  recreateTask(): Promise<boolean>;
  onAnswer(res: SyncResponse): void;
}

export class TransferSync {
  private readonly port: SyncPort;
  private pending: number[] = [];
  private syncing: Promise<void> | undefined;
  /** When the last sync left, and when the supernode last answered (or took the task again). */
  lastSentAt = 0;
  lastOkAt: number;
  /** The wait the last answer asked for before the next routine sync (0: none). */
  paceMs = 0;
  /** Since when every sync was refused by the supernode's host (connectionRefused), if the last one was. */
  refusedSince: number | undefined;
  /** Set when the supernode's task is no longer this transfer's (begun again in another layout). */
  private left = false;

  constructor(port: SyncPort) {
    this.port = port;
    this.lastOkAt = port.clock.now();
  }

  /** A piece verified since the last sync (reported with the next one). */
  verified(index: number): void {
    this.pending.push(index);
  }

  /** Pieces verified and not yet reported. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /**
   * Whether a routine sync (periodic, after new haves, after a seed fetch) may leave now: `everyMs`
   * since the last one, and the supernode's pacing too.
   */
  due(everyMs = 0): boolean {
    return this.port.clock.now() - this.lastSentAt >= Math.max(everyMs, this.paceMs);
  }

  /**
   * Whether the periodic sync is due: syncInterval's period (whether it is quiet is asked only once
   * the usual one is over), kept to the nearest of the transfer's ticks, `tickMs` apart: due once the
   * period less half a tick has passed. Kept to the first tick past the period, a tick a hair early
   * (a timer's lateness varies; the model's clock is fractional) put the sync a whole tick later, and
   * a transfer whose syncs kept slipping synced every 750 ms instead of 500, heard of a parent (one
   * an answer) less often and trailed the swarm: simulated 1,000 peers, 64 MiB in 128 KiB pieces (a
   * large cluster's layout, src/p2p/metainfo.ts), all-done 7.86 / 7.77 -> 7.04 / 7.01 s (seeds 1 /
   * 2), the median 6.71 / 6.68 -> 6.67 / 6.66. In 256 KiB pieces it was no gain (7.33 / 7.19 -> 7.31
   * / 7.28 s, the median 7.09 / 7.06 -> 7.18 / 7.18): the slipping syncs' spread had kept children
   * from reading the same counts at once, which random ties (piece-picker.ts) now partly do.
   */
  periodicDue(syncMs: number, have: number, pieceCount: number, tickMs: number): boolean {
    const early = tickMs / 2;
    return this.due(syncInterval(syncMs, have, pieceCount) - early) && (!this.quiet(have, pieceCount) || this.due(syncInterval(syncMs, have, pieceCount, true) - early));
  }

  /**
   * Whether the pieces verified and not yet reported call for a sync now: HAVE_BYTES_PER_SYNC of
   * them (QUIET_SYNC_FACTOR times that when quiet, asked only past the first threshold: it reads
   * the parent pool), and the supernode's pacing allows.
   */
  havesDue(pieceSize: number, have: number, pieceCount: number): boolean {
    const unreported = this.pending.length * pieceSize;
    return unreported >= HAVE_BYTES_PER_SYNC && this.due() && unreported >= HAVE_BYTES_PER_SYNC * (this.quiet(have, pieceCount) ? QUIET_SYNC_FACTOR : 1);
  }

  /** A quarter of the blob held and a full parent pool: syncs QUIET_SYNC_FACTOR times less often. */
  private quiet(have: number, pieceCount: number): boolean {
    return have * 4 >= pieceCount && this.port.poolFull();
  }

  /** Syncs now unless a sync is out (then resolves when that one is answered or failed). */
  sync(): Promise<void> {
    const port = this.port;
    if (this.syncing || !port.wanted()) return this.syncing ?? Promise.resolve();
    this.lastSentAt = port.clock.now();
    const have = this.pending;
    this.pending = [];
    const rest = port.request();
    this.syncing = port.client
      .sync(port.supernode, port.digest, { have, ...rest })
      .then((res) => {
        this.lastOkAt = port.clock.now();
        this.refusedSince = undefined;
        this.paceMs = pacedMs(res);
        port.onAnswer(res);
      })
      .catch(async (err: unknown) => {
        this.pending.push(...have);
        port.unsent(rest);
        this.refusedSince = connectionRefused(err) ? (this.refusedSince ?? port.clock.now()) : undefined;
        const e = toPollenError(err);
        // Called faster than its allowance: the next routine sync waits what the supernode said.
        const refused = refusedMs(e);
        if (refused > 0) this.paceMs = refused;
        if (e.kind === 'not_found') {
          // The supernode lost the peer or the task (a restart): register the task again.
          await port.recreateTask().then(
            (ours) => {
              if (ours) this.lastOkAt = port.clock.now();
              else this.left = true;
            },
            () => {},
          );
        }
        port.logger.debug({ digest: port.digest, err: e.message }, 'sync failed');
      })
      .finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  /**
   * Takes an answer that came without a sync of its own (the first schedule, with the task's
   * creation) as if a sync had just been answered: its pacing counts from now.
   */
  answered(res: SyncResponse): void {
    const now = this.port.clock.now();
    this.lastSentAt = this.lastOkAt = now;
    this.paceMs = pacedMs(res);
    this.port.onAnswer(res);
  }

  /**
   * The last report names every piece, not only those since the last answered sync: a sync in
   * flight when the transfer ended may fail with its haves, and the supernode should list this peer
   * as a holder of the whole blob. A loaded supernode may drop one request: tried a few times.
   * It keeps to the supernode's pacing like a routine sync: the peers of a large fan-out finish
   * within a second or two of each other, and their reports at once were twice the paced rate
   * (simulated 10,000 peers: 16,081 syncs in the last second against 8,000 before it). It says
   * every hash is known: without, the route answered the whole list, every piece's hash once more
   * per peer and blob (simulated 1,000 peers, 64 MiB: 0.13 x S on the supernode's uplink). None
   * to a task the transfer left (begun again in another layout: a 404 there, or other bytes named).
   */
  async reportComplete(pieceCount: number): Promise<void> {
    const port = this.port;
    if (this.left) return;
    this.pending = [];
    const have = Array.from({ length: pieceCount }, (_, i) => i);
    const wait = this.lastSentAt + this.paceMs - port.clock.now();
    if (wait > 0) await new Promise<void>((resolve) => port.clock.setTimeout(resolve, wait));
    for (let attempt = 0; attempt < FINAL_REPORT_ATTEMPTS; attempt++) {
      const ok = await port.client.sync(port.supernode, port.digest, { have, wantSeed: 0, badParents: [], knownHashes: pieceCount }).then(
        () => true,
        () => false,
      );
      if (ok || attempt === FINAL_REPORT_ATTEMPTS - 1) return;
      await new Promise<void>((resolve) => port.clock.setTimeout(resolve, 1000 * 2 ** attempt));
    }
  }
}

/**
 * The metainfo with the hashes an answer carries (from `hashesFrom` on, possibly ending before the
 * last piece: those after are not known yet); a malformed answer changes nothing.
 */
export function withAnsweredHashes(meta: MetainfoBody, res: Pick<SyncResponse, 'hashes' | 'hashesFrom'>): MetainfoBody {
  const from = res.hashesFrom ?? 0;
  if (!Number.isInteger(from) || from < 0 || from + res.hashes.length > meta.pieceCount) return meta;
  const hashes = [...meta.hashes];
  res.hashes.forEach((h, k) => {
    if (typeof h === 'string' && hashes[from + k] == null) hashes[from + k] = h;
  });
  return { ...meta, hashes };
}

/** Leading piece hashes known (what the next sync need not be sent again). */
export function knownHashCount(meta: MetainfoBody): number {
  let n = 0;
  while (n < meta.pieceCount && typeof meta.hashes[n] === 'string') n++;
  return n;
}

/** Whether piece `i`'s hash is known (a piece is requested, or taken from the registry unchecked, only then). */
export function hashKnown(meta: MetainfoBody, i: number): boolean {
  return typeof meta.hashes[i] === 'string';
}
