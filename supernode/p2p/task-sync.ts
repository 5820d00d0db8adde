// What one task's sync does at the supernode, apart from HTTP and the seed: the haves and reports
// it brings in, and the schedule it gets back. The route (routes-p2p.ts) and the simulation
// (bench/sim/sim-supernode.ts) both run these.
import type { Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import type { SyncBatchItem, SyncRequest } from '../../src/p2p/supernode-api.ts';
import { havesOf, NAMED_ITEM_OPTIONS } from '../../src/p2p/sync-answer.ts';
import type { Schedule, Scheduler } from './scheduler.ts';
import { pacedSchedule, type SyncPacer } from './sync-pacer.ts';
import type { PeerRecord, Tracker } from './tracker.ts';

export interface TaskSyncDeps {
  readonly tracker: Tracker;
  readonly scheduler: Scheduler;
  /** Paces the peers' syncs (absent: no pacing). */
  readonly pacer?: SyncPacer | undefined;
}

/**
 * A batch item's task and its sync: named by digest, or by its short name among the calling peer's
 * own tasks only (an item so named asks the answer options it implies: NAMED_ITEM_OPTIONS). A
 * name no task of the peer's has reads as an unknown task (the peer creates it again); a name two
 * of them share is refused, and the peer names that task by digest from then on.
 */
export function syncItemTask(peer: PeerRecord, item: SyncBatchItem): { readonly digest: Digest; readonly body: SyncRequest } {
  const { digest, task, ...rest } = item;
  const body = { ...rest, have: rest.have ?? [], wantSeed: rest.wantSeed ?? 0, badParents: rest.badParents ?? [] };
  if (digest !== undefined) return { digest, body };
  const named = task === undefined ? undefined : peer.taskNames.get(task);
  if (named === null) throw new PollenError('ERR_INVALID_REQUEST', `two tasks of this peer have the name ${task}: name the task by its digest`, { task });
  if (named === undefined) throw new PollenError('ERR_NOT_FOUND', 'unknown task for this peer: create the task again', { task });
  return { digest: named, body: { ...body, ...NAMED_ITEM_OPTIONS } };
}

/** Takes in the pieces the peer verified and the parents it reports (slow or unreachable; corrupt). */
export function takeSyncReports(deps: TaskSyncDeps, peer: PeerRecord, digest: Digest, body: SyncRequest): void {
  const have = havesOf(body);
  if (!have) throw new PollenError('ERR_INVALID_REQUEST', 'havePacked is not a canonical base64 bitfield');
  deps.scheduler.have(digest, peer.peerId, have);
  report(deps, digest, peer, body.badParents ?? [], false);
  report(deps, digest, peer, body.corruptParents ?? [], true);
}

/** The sync's parents, seed grants and counts (and its wait, when paced). `seedHas`: whether the seed has piece i yet. */
export function scheduleSync(deps: TaskSyncDeps, peer: PeerRecord, digest: Digest, body: SyncRequest, seedHas: (i: number) => boolean): Schedule & { syncMs?: number } {
  return pacedSchedule(deps.scheduler, deps.pacer, peer, digest, body.wantSeed ?? 0, { seedHas, starved: body.starved === true, declined: body.declined, wantParents: body.wantParents });
}

/**
 * Counts the reporter's reports against their parents: only parents the schedule offered it for
 * this task, each offer once, within the reporter's allowance of reports.
 */
function report(deps: TaskSyncDeps, digest: Digest, reporter: PeerRecord, parents: readonly string[], corrupt: boolean): void {
  for (const id of parents) {
    const parent = deps.tracker.get(id);
    if (!parent || !deps.scheduler.takeOffer(digest, reporter.peerId, id) || !deps.tracker.chargeReport(reporter)) continue;
    parent.failures++;
    if (corrupt) parent.corruptions++;
  }
}
