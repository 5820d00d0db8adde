// What a peer's batch of syncs carries besides its items: the answer options it asks, and, when
// due, the peer's heartbeat report (the batch then stands for its heartbeat: p2p-agent.ts); and
// the queue of syncs a batch is made of, per supernode (supernode-client.ts).
import type { Digest } from '../../src/digest.ts';
import type { SyncRequest, SyncResponse } from '../../src/p2p/supernode-api.ts';

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

/** Syncs sent in one request at most (the supernode takes API_LIMITS.syncsPerBatch). */
export const SYNCS_PER_REQUEST = 16;

interface QueuedSync {
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
