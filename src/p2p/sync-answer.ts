// A sync's answer as it goes on the wire, shaped as the peer asked (SyncRequest's answer options),
// and read back by the peer. The supernode's route builds its answers with syncAnswer and
// asShaped, and the simulation counts their bytes with the same two (bench/sim/simulated-peer.ts).
//
// `terse`: at thousands of peers an answer is mostly fixed cost on the supernode host's uplink
// beside the seed's pieces, and most of its fields are empty most of the time (no hashes for a
// peer with piece proofs, no grants once peers hold the pieces, the counts every 4 s). A terse
// answer leaves out every empty list, `hashesFrom` with no hashes and a zero `syncMs`, and a batch
// item leaves out its digest (the answers come in the order asked); readSyncAnswer puts them back.
import { hashesAfter, packHashes } from './metainfo.ts';
import type { SyncRequest, SyncResponse } from './supernode-api.ts';

/** What the answer says besides the hashes (the scheduler's part). */
export type SyncSchedule = Omit<SyncResponse, 'hashes' | 'hashesFrom' | 'hashesPacked'>;

/** The answer options of a sync (what the peer asked of its answer's shape). */
export type SyncAnswerAsk = Pick<SyncRequest, 'knownHashes' | 'trimHashes' | 'packHashes' | 'terse'>;

/** What goes on the wire for a sync: the whole answer, or a terse one. */
export type SyncAnswerJson = SyncResponse | Partial<SyncResponse>;

/**
 * The answer: the piece hashes the peer lacks (from `knownHashes` on; trimmed of the seed's
 * unknown tail, packed, when asked) and the schedule.
 */
export function syncAnswer(taskHashes: ReadonlyArray<string | null>, ask: SyncAnswerAsk, schedule: SyncSchedule): SyncResponse {
  const k = ask.knownHashes;
  const known = typeof k === 'number' && Number.isInteger(k) ? Math.min(Math.max(0, k), taskHashes.length) : 0;
  // Only the hashes the peer lacks: all of them on every sync was 17 KB per answer for a 256 MiB
  // blob, on the links the seed keeps full.
  const hashes = hashesAfter(taskHashes, known, ask.trimHashes === true);
  // Packed when asked and there is anything to pack (a peer with piece proofs asks for none).
  return ask.packHashes === true && hashes.length > 0 ? { hashes: [], hashesPacked: packHashes(hashes), hashesFrom: known, ...schedule } : { hashes, hashesFrom: known, ...schedule };
}

/** The answer as the peer asked it on the wire: terse, or whole. */
export function asShaped(ask: SyncAnswerAsk, answer: SyncResponse): SyncAnswerJson {
  return ask.terse === true ? terse(answer) : answer;
}

/** A full answer without what a terse one leaves out (see the head of this file). */
export function terse(answer: SyncResponse): Partial<SyncResponse> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(answer)) {
    if (Array.isArray(value) && value.length === 0) continue;
    if (key === 'syncMs' && !value) continue;
    out[key] = value;
  }
  if (answer.hashes.length === 0 && answer.hashesPacked === undefined) delete out.hashesFrom;
  return out as Partial<SyncResponse>;
}

/**
 * A sync answer as the transfer reads it: the lists a terse answer left out as empty; undefined
 * when a field is not of its type (a malformed answer).
 */
export function readSyncAnswer(json: object): SyncResponse | undefined {
  const answer = json as Record<string, unknown>;
  const list = (v: unknown): unknown[] | undefined => (v === undefined ? [] : Array.isArray(v) ? v : undefined);
  const hashes = list(answer.hashes);
  const parents = list(answer.parents);
  const seedGrants = list(answer.seedGrants);
  const availability = list(answer.availability);
  if (!hashes || !parents || !seedGrants || !availability) return undefined;
  return { ...answer, hashes, parents, seedGrants, availability } as SyncResponse;
}
