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
// the counts were as large as the parents in the answers, 4-5 digits and a comma a piece. They end
// at the last piece anyone holds (the rest are zeros).
// A task's creation asked terse gets its metainfo's hashes trimmed and packed and its first
// schedule terse (taskAnswer): 10,000 creations in a pull's first second were ~1.2 KB each, most
// of it the nulls of hashes the seed had not yet and counts that were all zero. One asked
// `withoutHashes` (a peer that reads piece proofs) gets none at all.
// `packParents` (with terse): the parents go packed too, 26 bytes each (`parentsPacked`,
// packParents), when every one is an agent's id and an IPv4 address.
import { hashesAfter, MAX_PIECES, packHashes, unpackHashes } from './metainfo.ts';
import type { Digest } from '../digest.ts';
import type { MetainfoBody, ParentInfo, SyncBatchItem, SyncRequest, SyncResponse, TaskAnswer } from './supernode-api.ts';

/** What the answer says besides the hashes (the scheduler's part). */
export type SyncSchedule = Omit<SyncResponse, 'hashes' | 'hashesFrom' | 'hashesPacked'>;

/** The answer options of a sync (what the peer asked of its answer's shape). */
export type SyncAnswerAsk = Pick<SyncRequest, 'knownHashes' | 'trimHashes' | 'packHashes' | 'terse' | 'packParents'>;

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
  return ask.terse === true ? terse(answer, ask.packParents === true) : answer;
}

/** A terse answer on the wire: a whole one without its empty fields, the counts packed (and the parents, when asked). */
export type TerseSyncAnswer = Partial<SyncResponse> & { readonly availabilityPacked?: string; readonly parentsPacked?: string };

/** A full answer without what a terse one leaves out, its counts packed, its parents too when `packingParents` (see the head of this file). */
export function terse(answer: SyncResponse, packingParents = false): TerseSyncAnswer {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(answer)) {
    if (Array.isArray(value) && value.length === 0) continue;
    if (key === 'syncMs' && !value) continue;
    const packed = key === 'parents' && packingParents ? packParents(answer.parents) : undefined;
    if (packed !== undefined) out.parentsPacked = packed;
    else if (key === 'availability') out.availabilityPacked = packCounts(withoutZeroTail(answer.availability));
    else out[key] = value;
  }
  if (answer.hashes.length === 0 && answer.hashesPacked === undefined) delete out.hashesFrom;
  return out as TerseSyncAnswer;
}

/**
 * The counts without their tail of zeros, one count at least (an empty list is the supernode's
 * "unchanged"): a peer reads a count past the list's end as 0 (peer/p2p/parent-requests.ts), as
 * peers always have. In a fan-out's first second the pieces nobody holds yet are most of the list
 * (the seed's pieces come in order), and 10,000 creations each carried 256 zero counts, a third of
 * every answer on the supernode host's uplink while the seed had sent almost nothing.
 */
function withoutZeroTail(counts: readonly number[]): readonly number[] {
  let end = counts.length;
  while (end > 1 && !(counts[end - 1]! > 0)) end--;
  return end === counts.length ? counts : counts.slice(0, end);
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

/** A parent packed: its id (20 bytes, from 40 hex digits), its IPv4 address (4) and its port (2). */
const PACKED_PARENT_BYTES = 26;
/** Parents in one packed list at most (a sync asks 64 at most: supernode/http/schemas.ts). */
export const MAX_PACKED_PARENTS = 64;
const PACKABLE_ID = /^[0-9a-f]{40}$/;
const PACKABLE_ADDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})$/;

/**
 * The parents as 26 bytes each in base64 (`parentsPacked`), or undefined unless every one has an
 * agent's id (40 hex digits) and an IPv4 address and port written as unpackParents writes them
 * back: then the list goes whole. At 10,000 simulated peers the parents were nine tenths of a sync
 * answer's JSON, ~88 bytes each as `{"peerId":…,"wireAddr":…}`; packed they are 35.
 */
export function packParents(parents: readonly ParentInfo[]): string | undefined {
  if (parents.length === 0 || parents.length > MAX_PACKED_PARENTS) return undefined;
  const bytes = Buffer.alloc(parents.length * PACKED_PARENT_BYTES);
  for (let k = 0; k < parents.length; k++) {
    const { peerId, wireAddr } = parents[k]!;
    const addr = PACKABLE_ADDR.exec(wireAddr);
    if (!PACKABLE_ID.test(peerId) || !addr) return undefined;
    const at = k * PACKED_PARENT_BYTES;
    bytes.write(peerId, at, 20, 'hex');
    for (let o = 0; o < 4; o++) bytes[at + 20 + o] = Number(addr[o + 1]);
    bytes.writeUInt16BE(Number(addr[5]) & 0xffff, at + 24);
    // Only what reads back the same (no octet over 255, no leading zero, a port that fits).
    if (parentAt(bytes, at).wireAddr !== wireAddr) return undefined;
  }
  return bytes.toString('base64');
}

function parentAt(bytes: Buffer, at: number): ParentInfo {
  return { peerId: bytes.toString('hex', at, at + 20), wireAddr: `${bytes[at + 20]}.${bytes[at + 21]}.${bytes[at + 22]}.${bytes[at + 23]}:${bytes.readUInt16BE(at + 24)}` };
}

/** The parents of packParents, or undefined unless `packed` is canonical base64 of 1 to `max` whole parents. */
export function unpackParents(packed: unknown, max: number): ParentInfo[] | undefined {
  if (typeof packed !== 'string' || packed.length > Math.ceil((max * PACKED_PARENT_BYTES) / 3) * 4) return undefined;
  const bytes = Buffer.from(packed, 'base64');
  if (bytes.length === 0 || bytes.length % PACKED_PARENT_BYTES !== 0 || bytes.toString('base64') !== packed) return undefined;
  return Array.from({ length: bytes.length / PACKED_PARENT_BYTES }, (_, k) => parentAt(bytes, k * PACKED_PARENT_BYTES));
}

/**
 * A sync answer as the transfer reads it: the lists a terse answer left out as empty, the packed
 * ones unpacked; undefined when a field is not of its type (a malformed answer).
 */
export function readSyncAnswer(json: object): SyncResponse | undefined {
  const { availabilityPacked, parentsPacked, ...answer } = json as Record<string, unknown>;
  const list = (v: unknown): unknown[] | undefined => (v === undefined ? [] : Array.isArray(v) ? v : undefined);
  const hashes = list(answer.hashes);
  // Packed or whole, not both.
  const parents = parentsPacked === undefined ? list(answer.parents) : answer.parents === undefined ? unpackParents(parentsPacked, MAX_PACKED_PARENTS) : undefined;
  const seedGrants = list(answer.seedGrants);
  const availability = availabilityPacked === undefined ? list(answer.availability) : unpackCounts(availabilityPacked, MAX_PIECES);
  if (!hashes || !parents || !seedGrants || !availability) return undefined;
  return { ...answer, hashes, parents, seedGrants, availability } as SyncResponse;
}

/** A task creation's answer on the wire: whole, or (`terse`) with its hashes packed and its first schedule terse; no hashes when asked `withoutHashes`. */
export function taskAnswer(meta: MetainfoBody & { readonly hashList?: string }, first: SyncResponse | undefined, ask: { readonly terse?: boolean | undefined; readonly withoutHashes?: boolean | undefined; readonly packParents?: boolean | undefined }): TaskAnswer | Record<string, unknown> {
  if (ask.withoutHashes === true) meta = { ...meta, hashes: new Array<null>(meta.pieceCount).fill(null) };
  if (ask.terse !== true) return first ? { ...meta, first } : meta;
  const known = hashesAfter(meta.hashes, 0, true);
  const { hashes: _, ...rest } = meta;
  return { ...rest, hashes: [], hashesPacked: packHashes(known), ...(first ? { first: terse(first, ask.packParents === true) } : {}) };
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

/**
 * Piece indexes as a bitfield (BitTorrent bit order: piece 0 is the high bit of byte 0) up to the
 * byte of the largest, as base64: a sync's `havePacked`. At 10,000 simulated peers the haves were
 * the larger part of the syncs' requests, ~4 bytes an index as JSON, and the requests share the
 * supernode host's downlink with the seed's stream from the registry; a 256-piece blob's whole
 * bitfield is 44 bytes.
 */
export function packIndexes(indexes: readonly number[]): string {
  const bytes = Buffer.alloc(indexes.length === 0 ? 0 : (Math.max(...indexes) >> 3) + 1);
  for (const i of indexes) bytes[i >> 3]! |= 0x80 >> (i & 7);
  return bytes.toString('base64');
}

/** The indexes of packIndexes, or undefined unless `packed` is canonical base64 of at most `max` bits' bytes. */
export function unpackIndexes(packed: unknown, max: number): number[] | undefined {
  if (typeof packed !== 'string' || packed.length > Math.ceil(Math.ceil(max / 8) / 3) * 4) return undefined;
  const bytes = Buffer.from(packed, 'base64');
  if (bytes.length > Math.ceil(max / 8) || bytes.toString('base64') !== packed) return undefined;
  const indexes: number[] = [];
  bytes.forEach((b, k) => {
    for (let bit = 0; b !== 0 && bit < 8; bit++) if (b & (0x80 >> bit)) indexes.push(k * 8 + bit);
  });
  return indexes;
}

/** Hex digits of a digest that name its task in a batch item (SyncBatchItem `task`): 64 bits. */
export const TASK_NAME_HEX = 16;
/** A task's short name: the first TASK_NAME_HEX hex digits of its digest. */
export function taskName(digest: Digest): string {
  const hex = digest.indexOf(':') + 1;
  return digest.slice(hex, hex + TASK_NAME_HEX);
}

/** The answer options an item named by `task` asks without sending them (SyncBatchItem). */
export const NAMED_ITEM_OPTIONS = { terse: true, packParents: true } as const;

/** The answer options a sync may ask (flags of SyncRequest). */
export type AnswerOptions = Pick<SyncRequest, 'terse' | 'packParents' | 'trimHashes' | 'packHashes'>;

/**
 * One task's sync as the peer's client sends it in a batch, for a supernode that reads `fields`
 * (its registration's `syncFields`): the task by digest with the answer options asked, or by its
 * short name (`task`) with the options implied; without the lists that are empty and the flags
 * that are false, which the supernode reads absent as empty (15 and 16 bytes each in nearly every
 * sync); its haves packed when that is shorter (`havePacked`). `byDigest`: the supernode could not
 * tell this task by its name (two of the peer's tasks share it). The model counts its requests
 * with it.
 */
export function syncItem(body: SyncRequest, digest: Digest, asked: AnswerOptions, fields: readonly string[] = [], byDigest = false): SyncBatchItem {
  const named = fields.includes('task') && !byDigest;
  const { have, wantSeed, badParents, corruptParents, declined, starved, leave, ...rest } = body;
  const packed = fields.includes('havePacked') && have.length > 0 ? packIndexes(have) : undefined;
  const said = {
    ...rest,
    ...(packed !== undefined && packed.length < JSON.stringify(have).length ? { havePacked: packed } : have.length > 0 && { have }),
    ...(!(named && wantSeed === 0) && { wantSeed }),
    ...(badParents.length > 0 && { badParents }),
    ...(corruptParents !== undefined && corruptParents.length > 0 && { corruptParents }),
    ...(declined !== undefined && declined.length > 0 && { declined }),
    ...(starved === true && { starved }),
    ...(leave === true && { leave }),
  };
  return named ? { ...said, task: taskName(digest) } : { ...said, digest, ...asked };
}

/** A sync's haves: its list and its packed ones (`havePacked`); undefined when the packing is malformed. */
export function havesOf(body: { readonly have?: readonly number[] | undefined; readonly havePacked?: string | undefined }): readonly number[] | undefined {
  if (body.havePacked === undefined) return body.have ?? [];
  const packed = unpackIndexes(body.havePacked, MAX_PIECES);
  return packed && (body.have?.length ? [...body.have, ...packed] : packed);
}
