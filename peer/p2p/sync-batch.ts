// What a peer's batch of syncs carries besides its items: the answer options it asks, and, when
// due, the peer's heartbeat report (the batch then stands for its heartbeat: p2p-agent.ts); and
// the queue of syncs a batch is made of, per supernode (supernode-client.ts), and how a batch's
// answer is read back into each queued sync's.
import type { Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import { apiErrorFrom, type HeartbeatBody, type SyncBatchItem, type SyncBatchResponse, type SyncRequest, type SyncResponse } from '../../src/p2p/supernode-api.ts';
import { readSyncAnswer } from '../../src/p2p/sync-answer.ts';
import { withUnpackedHashes } from './supernode-answers.ts';

/**
 * What a batch of syncs asks of the answers (src/p2p/supernode-api.ts SyncRequest): `terse`,
 * answers without their empty fields and digests, their hashes trimmed and packed; `packParents`,
 * their parents packed too (src/p2p/sync-answer.ts). A supernode from before an option answers
 * without it.
 */
export const ANSWER_OPTIONS = ['terse', 'packParents'] as const;
/** Every answer option asked, as a sync item carries them to a supernode that takes them all. */
export const SYNC_ANSWER_OPTIONS: Readonly<Record<(typeof ANSWER_OPTIONS)[number], true>> = { terse: true, packParents: true };
/** What a task's creation asks of its answer: the same options (src/p2p/sync-answer.ts taskAnswer); a supernode from before drops them. */
export const TASK_ANSWER_OPTIONS = SYNC_ANSWER_OPTIONS;

/**
 * A batch of syncs (or a creation asking its first schedule) carries the peer's report when the
 * last one the supernode took (`lastReportAt`, 0: none yet) is `everyMs` old: as often as a busy
 * peer's heartbeat would go (p2p-agent.ts; a second unless the supernode asks more often), not with
 * every batch (~140 bytes of a ~600-byte request, at a sync every 0.5-1 s; requests are most of
 * the API's bytes at thousands of peers).
 */
export const REPORT_EVERY_MS = 1_000;
export function reportDue(now: number, lastReportAt: number, everyMs = REPORT_EVERY_MS): boolean {
  return lastReportAt === 0 || now - lastReportAt >= everyMs;
}

/**
 * The report to one supernode: due as reportDue says, and carried by one request at a time. An
 * image's layers are created together (the engine asks for them at once), and each creation took
 * the report while none had been answered: an image of four layers sent it four times at the
 * start of a pull, on the supernode host's downlink when every peer of a fan-out starts at once.
 * A request that carried it settles it: the supernode took it (its answer says `reported`), or not
 * (then the next request carries it).
 */
export class ReportTurn {
  /** When the supernode last took the report (0: never). */
  lastAt = 0;
  /** When the request that carries it now left (undefined: none does). */
  private outSince: number | undefined;

  /**
   * Whether a request leaving now carries the report: due, and no other request carries it, or the
   * one that does left `everyMs` ago (a creation may wait long on the registry's admission: the
   * report is not held back longer than it would have been without this rule).
   */
  take(now: number, everyMs = REPORT_EVERY_MS): boolean {
    if ((this.outSince !== undefined && now - this.outSince < everyMs) || !reportDue(now, this.lastAt, everyMs)) return false;
    this.outSince = now;
    return true;
  }

  /**
   * What the supernode holds of the report (the fields it took), kept for one that keeps what a
   * report leaves out (`reportChanges` in its registration's syncFields); undefined: nothing.
   */
  private known: HeartbeatBody | undefined;

  /**
   * The report a request that took the turn carries, of the whole one `full`: to a supernode that
   * keeps what a report leaves out (`keeps`), only the fields that changed since the last one it
   * took. The version and the store's quota never change, and the byte counts are what the status
   * page reads: ~140 bytes become ~90, four times a pull, on the supernode host's downlink.
   */
  body(full: HeartbeatBody, keeps: boolean): HeartbeatBody {
    const known = this.known;
    if (!keeps || !known) return full;
    return Object.fromEntries(Object.entries(full).filter(([k, v]) => known[k as keyof HeartbeatBody] !== v)) as HeartbeatBody;
  }

  /** A request leaving now takes the turn (take): the report `report()` it stands for (`full`) and what goes (`body`). */
  next(now: number, everyMs: number, report: () => HeartbeatBody, keeps: boolean): { full: HeartbeatBody; body: HeartbeatBody } | undefined {
    if (!this.take(now, everyMs)) return undefined;
    const full = report();
    return { full, body: this.body(full, keeps) };
  }

  /**
   * The request that carried the report ended: `taken`, with the supernode's answer that it took
   * it; `sent` the whole report it stood for (ReportTurn.body's `full`).
   */
  settle(now: number, taken: boolean, sent?: HeartbeatBody): void {
    this.outSince = undefined;
    if (!taken) return;
    this.lastAt = now;
    if (sent) this.known = { ...this.known, ...sent };
  }

  /** The supernode registered this peer anew: it holds none of its report. */
  forget(): void {
    this.known = undefined;
  }
}

/** Syncs sent in one request at most (the supernode takes API_LIMITS.syncsPerBatch). */
export const SYNCS_PER_REQUEST = 16;

export interface QueuedSync {
  readonly digest: Digest;
  readonly body: SyncRequest;
  resolve(answer: SyncResponse): void;
  reject(err: unknown): void;
}

/** The syncs waiting for one supernode, and whether a request of them is out. */
export interface SyncQueue {
  readonly waiting: QueuedSync[];
  scheduled: boolean;
  inFlight: boolean;
}

/**
 * The next request's syncs: the first SYNCS_PER_REQUEST waiting, one a task (a supernode refuses a
 * task synced twice in one batch, and an answer that names its digest could not tell them apart);
 * a task's later sync waits, in its place, for the next request (a transfer's last report can be
 * asked while its periodic sync waits).
 */
export function takeBatch(waiting: QueuedSync[]): QueuedSync[] {
  const batch: QueuedSync[] = [];
  const digests = new Set<Digest>();
  for (let k = 0; k < waiting.length && batch.length < SYNCS_PER_REQUEST; ) {
    const q = waiting[k]!;
    if (digests.has(q.digest)) {
      k++;
      continue;
    }
    digests.add(q.digest);
    batch.push(q);
    waiting.splice(k, 1);
  }
  return batch;
}

/**
 * Answers each queued sync of a batch from the batch's answer, in the order asked: its schedule
 * (`answered` sees it first), or the error it would have had alone. An answer names its digest
 * unless the batch asked `terse` or the item named its task by short name (`items`, as sent); an
 * item whose name the supernode could not tell is handed to `unnamed`.
 */
export function settleBatch(url: string, batch: readonly QueuedSync[], items: readonly SyncBatchItem[], res: SyncBatchResponse | undefined, terse: boolean, hooks: { answered(answer: SyncResponse): void; unnamed(digest: Digest): void }): void {
  const answers = Array.isArray(res?.syncs) ? res.syncs : [];
  const malformed = (): PollenError => new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${url} sent a malformed sync answer`, { supernode: url });
  batch.forEach((q, k) => {
    const a = answers[k];
    const named = items[k]?.task !== undefined;
    if (!a || typeof a !== 'object' || (a.digest === undefined ? !(terse || named) : a.digest !== q.digest)) return q.reject(malformed());
    if ('answer' in a && a.answer && typeof a.answer === 'object') {
      const read = readSyncAnswer(a.answer);
      const answer = read && withUnpackedHashes(read);
      if (!answer) return q.reject(malformed());
      hooks.answered(answer);
      return q.resolve(answer);
    }
    const status = 'status' in a && Number.isInteger(a.status) ? a.status : 502;
    const err = apiErrorFrom(status, 'error' in a ? a.error : undefined, 'ERR_SUPERNODE_UNAVAILABLE', { supernode: url });
    if (named && err.code === 'ERR_INVALID_REQUEST') hooks.unnamed(q.digest);
    q.reject(new PollenError(err.code, `supernode ${url} answered ${status} for ${q.digest}: ${err.message}`, err.detail));
  });
}

/** Tasks named by digest because a supernode could not tell them by name, at most (NamedByDigest). */
const BY_DIGEST_MAX = 1_024;

/**
 * Tasks a supernode could not tell by their short name (two of this peer's tasks there share it):
 * their syncs there name them by digest (src/p2p/sync-answer.ts syncItem). Bounded: when full it
 * starts again (a task named again is refused once more).
 */
export class NamedByDigest {
  private readonly keys = new Set<string>();

  has(url: string, digest: Digest): boolean {
    return this.keys.has(`${url} ${digest}`);
  }

  add(url: string, digest: Digest): void {
    if (this.keys.size >= BY_DIGEST_MAX) this.keys.clear();
    this.keys.add(`${url} ${digest}`);
  }
}
