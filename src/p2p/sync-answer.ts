// A sync's answer as it goes on the wire, shaped as the peer asked (SyncRequest's answer options),
// and read back by the peer. The supernode's route builds its answers with syncAnswer and
// asShaped, and the simulation counts their bytes with the same two (bench/sim/simulated-peer.ts).
//
// `terse`: at thousands of peers an answer is mostly fixed cost on the supernode host's uplink
// beside the seed's pieces, and most of its fields are empty most of the time (no hashes for a
// peer with piece proofs, no grants once peers hold the pieces, the counts every 4 s). A terse
// answer leaves out every empty list, `hashesFrom` with no hashes and a zero `syncMs`, and a batch
// item leaves out its digest (the answers come in the order asked); readSyncAnswer puts them back.
// Its holder counts go packed, a byte a piece (`availabilityPacked`, packCounts): at 3,000 peers
// the counts were as large as the parents in the answers, 4-5 digits and a comma a piece.
// A task's creation asked terse gets its metainfo's hashes trimmed and packed and its first
// schedule terse (taskAnswer): 10,000 creations in a pull's first second were ~1.2 KB each, most
// of it the nulls of hashes the seed had not yet and counts that were all zero. One asked
// `withoutHashes` (a peer that reads piece proofs) gets none at all.
import { hashesAfter, MAX_PIECES, packHashes, unpackHashes } from './metainfo.ts';
import type { Digest } from '../digest.ts';
import type { MetainfoBody, SyncRequest, SyncResponse, TaskAnswer } from './supernode-api.ts';

/** What the answer says besides the hashes (the scheduler's part). */
export type SyncSchedule = Omit<SyncResponse, 'hashes' | 'hashesFrom' | 'hashesPacked'>;

/** The answer options of a sync (what the peer asked of its answer's shape). */
export type SyncAnswerAsk = Pick<SyncRequest, 'knownHashes' | 'trimHashes' | 'packHashes' | 'terse'>;

/** What goes on the wire for a sync: the whole answer, or a terse one. */
export type SyncAnswerJson = SyncResponse | TerseSyncAnswer;

/**
 * The answer: the piece hashes the peer lacks (from `knownHashes` on; trimmed of the seed's
 * unknown tail, packed, when asked) and the schedule.
 */
export function syncAnswer(taskHashes: ReadonlyArray<string | null>, ask: SyncAnswerAsk, schedule: SyncSchedule): SyncResponse {
  const k = ask.knownHashes;
  const known = typeof k === 'number' && Number.isInteger(k) ? Math.min(Math.max(0, k), taskHashes.length) : 0;
  // Only the hashes the peer lacks: all of them on every sync was 17 KB per answer for a 256 MiB
  // blob, on the links the seed keeps full.
  // A terse answer has them trimmed and packed too (older peers asked each on its own).
  const hashes = hashesAfter(taskHashes, known, ask.trimHashes === true || ask.terse === true);
  // Packed when asked and there is anything to pack (a peer with piece proofs asks for none).
  return (ask.packHashes === true || ask.terse === true) && hashes.length > 0 ? { hashes: [], hashesPacked: packHashes(hashes), hashesFrom: known, ...schedule } : { hashes, hashesFrom: known, ...schedule };
}

/** The answer as the peer asked it on the wire: terse, or whole. */
export function asShaped(ask: SyncAnswerAsk, answer: SyncResponse): SyncAnswerJson {
  return ask.terse === true ? terse(answer) : answer;
}

/** A terse answer on the wire: a whole one without its empty fields, the counts packed. */
export type TerseSyncAnswer = Partial<SyncResponse> & { readonly availabilityPacked?: string };

/** A full answer without what a terse one leaves out, its counts packed (see the head of this file). */
export function terse(answer: SyncResponse): TerseSyncAnswer {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(answer)) {
    if (Array.isArray(value) && value.length === 0) continue;
    if (key === 'syncMs' && !value) continue;
    if (key === 'availability') out.availabilityPacked = packCounts(answer.availability);
    else out[key] = value;
  }
  if (answer.hashes.length === 0 && answer.hashesPacked === undefined) delete out.hashesFrom;
  return out as TerseSyncAnswer;
}

/** Counts below this go as themselves; from it on, in steps of 2^(1/COUNT_STEPS_PER_DOUBLING). */
const EXACT_COUNTS = 128;
const COUNT_STEPS_PER_DOUBLING = 8;

/**
 * Holder counts, a byte each, as base64: exact below 128 (the rare pieces, where rarest-first
 * decides), then rounded down in steps of 9 % up to ~7.8 million holders (the order of two counts
 * is kept unless they share a step).
 */
export function packCounts(counts: readonly number[]): string {
  const bytes = Buffer.alloc(counts.length);
  counts.forEach((c, i) => {
    bytes[i] = c < EXACT_COUNTS ? Math.max(0, Math.floor(c)) : Math.min(255, EXACT_COUNTS + Math.floor(COUNT_STEPS_PER_DOUBLING * Math.log2(c / EXACT_COUNTS)));
  });
  return bytes.toString('base64');
}

/** The counts of packCounts (each step's least count), or undefined unless `packed` is canonical base64 of at most `max` counts. */
export function unpackCounts(packed: unknown, max: number): number[] | undefined {
  if (typeof packed !== 'string' || packed.length > Math.ceil(max / 3) * 4) return undefined;
  const bytes = Buffer.from(packed, 'base64');
  // Node's decoder skips what is not base64; only its own encoding of the bytes is taken.
  if (bytes.length > max || bytes.toString('base64') !== packed) return undefined;
  return Array.from(bytes, (b) => (b < EXACT_COUNTS ? b : Math.ceil(EXACT_COUNTS * 2 ** ((b - EXACT_COUNTS) / COUNT_STEPS_PER_DOUBLING))));
}

/**
 * A sync answer as the transfer reads it: the lists a terse answer left out as empty; undefined
 * when a field is not of its type (a malformed answer).
 */
export function readSyncAnswer(json: object): SyncResponse | undefined {
  const { availabilityPacked, ...answer } = json as Record<string, unknown>;
  const list = (v: unknown): unknown[] | undefined => (v === undefined ? [] : Array.isArray(v) ? v : undefined);
  const hashes = list(answer.hashes);
  const parents = list(answer.parents);
  const seedGrants = list(answer.seedGrants);
  const availability = availabilityPacked === undefined ? list(answer.availability) : unpackCounts(availabilityPacked, MAX_PIECES);
  if (!hashes || !parents || !seedGrants || !availability) return undefined;
  return { ...answer, hashes, parents, seedGrants, availability } as SyncResponse;
}

/** A task creation's answer on the wire: whole, or (`terse`) with its hashes packed and its first schedule terse; no hashes when asked `withoutHashes`. */
export function taskAnswer(meta: MetainfoBody, first: SyncResponse | undefined, ask: { readonly terse?: boolean | undefined; readonly withoutHashes?: boolean | undefined }): TaskAnswer | Record<string, unknown> {
  if (ask.withoutHashes === true) meta = { ...meta, hashes: new Array<null>(meta.pieceCount).fill(null) };
  if (ask.terse !== true) return first ? { ...meta, first } : meta;
  const known = hashesAfter(meta.hashes, 0, true);
  const { hashes: _, ...rest } = meta;
  return { ...rest, hashes: [], hashesPacked: packHashes(known), ...(first ? { first: terse(first) } : {}) };
}

/**
 * A task creation's answer as the peer reads it: every piece's hash in the list (null where not
 * known), `first` whole; undefined when the hashes or the first schedule are malformed.
 */
export function readTaskAnswer(json: object): TaskAnswer | undefined {
  const { hashesPacked, first, ...meta } = json as Record<string, unknown> & MetainfoBody;
  let hashes: ReadonlyArray<string | null> = meta.hashes;
  if (hashesPacked !== undefined) {
    const unpacked = unpackHashes(hashesPacked, MAX_PIECES);
    if (!unpacked || !Number.isInteger(meta.pieceCount) || unpacked.length > meta.pieceCount) return undefined;
    hashes = [...unpacked, ...new Array<null>(meta.pieceCount - unpacked.length).fill(null)];
  }
  if (first === undefined || first === null) return { ...meta, hashes };
  const schedule = typeof first === 'object' ? readSyncAnswer(first) : undefined;
  return schedule ? { ...meta, hashes, first: schedule } : undefined;
}

/** Fields of a sync whose absence the supernode reads as empty (none, or false): sent only when they say something. */
const EMPTY_WHEN_ABSENT = ['have', 'badParents', 'corruptParents', 'declined', 'starved', 'leave'] as const;

/**
 * One task's sync as the peer's client sends it in a batch: its digest and the answer options
 * asked, without the lists that are empty and the flags that are false (15 and 16 bytes each in
 * nearly every sync). The model counts its requests with it.
 */
export function syncItem(body: SyncRequest, digest: Digest, asked: Readonly<Record<string, boolean>>): Record<string, unknown> {
  const item: Record<string, unknown> = { ...body, digest, ...asked };
  for (const key of EMPTY_WHEN_ABSENT) {
    const v = item[key];
    if (v === false || (Array.isArray(v) && v.length === 0)) delete item[key];
  }
  return item;
}
