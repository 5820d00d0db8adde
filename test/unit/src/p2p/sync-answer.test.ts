// A sync's answer as the route shapes it and the peer's client reads it (src/p2p/sync-answer.ts):
// the hashes the peer lacks, trimmed and packed when asked; terse, without its empty fields; and
// read back into the same answer the transfer would have had from a whole one.
import { describe, expect, it } from 'vitest';
import { hashesAfter, packHashes } from '../../../../src/p2p/metainfo.ts';
import { SYNC_FIELDS, type MetainfoBody, type SyncResponse } from '../../../../src/p2p/supernode-api.ts';
import { asShaped, havesOf, NAMED_ITEM_OPTIONS, packCounts, packIndexes, packParents, readSyncAnswer, readTaskAnswer, syncAnswer, syncItem, TASK_NAME_HEX, taskAnswer, taskName, terse, unpackCounts, unpackIndexes, unpackParents } from '../../../../src/p2p/sync-answer.ts';
import { withUnpackedHashes } from '../../../../peer/p2p/supernode-answers.ts';
import { withAnsweredHashes } from '../../../../peer/p2p/transfer-sync.ts';

const HASHES = ['a'.repeat(64), 'b'.repeat(64), null, 'c'.repeat(64), null];
const EMPTY_SCHEDULE = { parents: [], seedGrants: [], availability: [] };
const SCHEDULE = { parents: [{ peerId: 'p2', wireAddr: '10.0.0.2:6881' }], seedGrants: [4], availability: [3, 2, 0, 1, 0], syncMs: 1250 };

describe('syncAnswer', () => {
  it('sends the hashes from the first the peer lacks: whole, trimmed of the unknown tail, packed', () => {
    expect(syncAnswer(HASHES, { knownHashes: 1 }, EMPTY_SCHEDULE)).toEqual({ hashes: HASHES.slice(1), hashesFrom: 1, ...EMPTY_SCHEDULE });
    expect(syncAnswer(HASHES, { knownHashes: 1, trimHashes: true }, EMPTY_SCHEDULE).hashes).toEqual(HASHES.slice(1, 4));
    expect(syncAnswer(HASHES, { knownHashes: 1, trimHashes: true, packHashes: true }, EMPTY_SCHEDULE)).toEqual({ hashes: [], hashesPacked: packHashes(hashesAfter(HASHES, 1, true)), hashesFrom: 1, ...EMPTY_SCHEDULE });
    // terse alone: trimmed and packed as well (peers ask it alone).
    expect(syncAnswer(HASHES, { knownHashes: 1, terse: true }, EMPTY_SCHEDULE)).toEqual(syncAnswer(HASHES, { knownHashes: 1, trimHashes: true, packHashes: true }, EMPTY_SCHEDULE));
    // A count out of range or not a count is as none known, or all.
    expect(syncAnswer(HASHES, { knownHashes: 99 }, EMPTY_SCHEDULE).hashes).toEqual([]);
    expect(syncAnswer(HASHES, { knownHashes: 1.5 }, EMPTY_SCHEDULE).hashesFrom).toBe(0);
  });
});

describe('terse answers', () => {
  it('leave out every empty list, hashesFrom without hashes and a zero syncMs', () => {
    const idle = syncAnswer(HASHES, { knownHashes: HASHES.length, packHashes: true }, { ...EMPTY_SCHEDULE, syncMs: 0 });
    expect(terse(idle)).toEqual({});
    expect(JSON.stringify(asShaped({ terse: true }, idle))).toBe('{}');
    const busy = syncAnswer(HASHES, { knownHashes: 3, packHashes: true }, SCHEDULE);
    const { availability, ...rest } = SCHEDULE;
    // The counts end at the last piece anyone holds ([3, 2, 0, 1, 0]).
    expect(availability).toEqual([3, 2, 0, 1, 0]);
    expect(terse(busy)).toEqual({ hashesPacked: packHashes(['c'.repeat(64), null]), hashesFrom: 3, ...rest, availabilityPacked: packCounts([3, 2, 0, 1]) });
    // Not asked: the whole answer, as a supernode from before `terse` sends it.
    expect(asShaped({}, idle)).toBe(idle);
  });

  it('read back as the answer the transfer would have had whole', () => {
    const cases: SyncResponse[] = [
      syncAnswer(HASHES, { knownHashes: HASHES.length }, EMPTY_SCHEDULE),
      syncAnswer(HASHES, { knownHashes: 0, trimHashes: true, packHashes: true }, SCHEDULE),
      syncAnswer(HASHES, { knownHashes: 2 }, { ...SCHEDULE, failed: 'digest mismatch' }),
    ];
    const meta: MetainfoBody = { digest: `sha256:${'d'.repeat(64)}`, size: 5 << 20, pieceSize: 1 << 20, pieceCount: 5, hashes: [null, null, null, null, null] };
    const wire = (a: object): object => JSON.parse(JSON.stringify(a)) as object;
    for (const whole of cases) {
      const fromTerse = withUnpackedHashes(readSyncAnswer(wire(terse(whole)))!)!;
      const fromWhole = withUnpackedHashes(readSyncAnswer(wire(whole))!)!;
      // The same hashes learned, the same schedule.
      expect(withAnsweredHashes(meta, fromTerse)).toEqual(withAnsweredHashes(meta, fromWhole));
      const { hashes: _a, hashesFrom: _b, availability: countsOfTerse, ...scheduleOfTerse } = fromTerse;
      const { hashes: _c, hashesFrom: _d, availability: countsOfWhole, ...scheduleOfWhole } = fromWhole;
      expect(scheduleOfTerse).toEqual(scheduleOfWhole);
      // The same count at every piece as the picker reads them (past the list's end: 0), and "unchanged" (empty) only when it was.
      const read = (counts: readonly number[]): number[] => meta.hashes.map((_, i) => counts[i] ?? 0);
      expect(read(countsOfTerse)).toEqual(read(countsOfWhole));
      expect(countsOfTerse.length === 0).toBe(countsOfWhole.length === 0);
    }
  });

  it('end their counts at the last piece anyone holds, and keep one when nobody holds any (not "unchanged")', () => {
    const counts = (availability: number[]): readonly number[] | undefined => readSyncAnswer(JSON.parse(JSON.stringify(terse(syncAnswer([], {}, { ...EMPTY_SCHEDULE, availability })))) as object)?.availability;
    expect(counts([0, 0, 0, 0])).toEqual([0]);
    expect(counts([0, 0, 5, 0])).toEqual([0, 0, 5]);
    expect(counts([1, 2, 3])).toEqual([1, 2, 3]);
    // A creation's first schedule in a fan-out's first second: the counts of 256 pieces, one of them held.
    const first = taskAnswer({ digest: `sha256:${'d'.repeat(64)}`, size: 256 << 18, pieceSize: 1 << 18, pieceCount: 256, hashes: new Array<null>(256).fill(null) }, { ...EMPTY_SCHEDULE, hashes: [], availability: [1, ...new Array<number>(255).fill(0)] }, { terse: true });
    expect((first.first as Record<string, unknown>).availabilityPacked).toBe(packCounts([1]));
  });

  it('carry their parents packed when asked, 26 bytes each, read back as the same list', () => {
    const parents = [
      { peerId: 'ab'.repeat(20), wireAddr: '10.0.39.16:65002' },
      { peerId: '0'.repeat(40), wireAddr: '255.255.255.255:1' },
    ];
    const answer = syncAnswer([], {}, { ...EMPTY_SCHEDULE, parents });
    const shaped = asShaped({ terse: true, packParents: true }, answer) as Record<string, unknown>;
    expect(shaped).toEqual({ parentsPacked: packParents(parents) });
    expect(Buffer.from(shaped.parentsPacked as string, 'base64')).toHaveLength(52);
    expect(readSyncAnswer(JSON.parse(JSON.stringify(shaped)) as object)?.parents).toEqual(parents);
    // Not asked, or not terse: the list.
    expect(asShaped({ terse: true }, answer)).toEqual({ parents });
    expect(asShaped({ packParents: true }, answer)).toBe(answer);
    // One that would not read back the same (not an agent's id, not IPv4, not as written back): the whole list goes as it is.
    for (const odd of [{ peerId: 'p2', wireAddr: '10.0.0.2:6881' }, { peerId: 'ab'.repeat(20), wireAddr: '[::1]:65002' }, { peerId: 'ab'.repeat(20), wireAddr: 'host.example:65002' }, { peerId: 'ab'.repeat(20), wireAddr: '10.0.0.02:65002' }, { peerId: 'ab'.repeat(20), wireAddr: '10.0.0.256:65002' }, { peerId: 'ab'.repeat(20), wireAddr: '10.0.0.2:65536' }, { peerId: 'AB'.repeat(20), wireAddr: '10.0.0.2:65002' }]) {
      expect(packParents([...parents, odd])).toBeUndefined();
      expect(asShaped({ terse: true, packParents: true }, syncAnswer([], {}, { ...EMPTY_SCHEDULE, parents: [...parents, odd] }))).toEqual({ parents: [...parents, odd] });
    }
    // A creation's first schedule, asked so.
    const meta: MetainfoBody = { digest: `sha256:${'d'.repeat(64)}`, size: 5 << 20, pieceSize: 1 << 20, pieceCount: 5, hashes: [null, null, null, null, null] };
    const created = taskAnswer(meta, answer, { terse: true, packParents: true });
    expect(created.first).toEqual({ parentsPacked: packParents(parents) });
    expect(readTaskAnswer(JSON.parse(JSON.stringify(created)) as object)?.first?.parents).toEqual(parents);
  });

  it('refuse packed parents that are not whole, canonical, within the limit, or sent beside the list', () => {
    const one = packParents([{ peerId: 'ab'.repeat(20), wireAddr: '10.0.0.1:65002' }])!;
    for (const bad of [7, '', `${one}!`, one.slice(0, 8), Buffer.alloc(27).toString('base64')]) expect(unpackParents(bad, 64)).toBeUndefined();
    expect(unpackParents(Buffer.alloc(26 * 65).toString('base64'), 64)).toBeUndefined();
    expect(unpackParents(Buffer.alloc(26 * 64).toString('base64'), 64)).toHaveLength(64);
    expect(readSyncAnswer({ parentsPacked: one, parents: [] })).toBeUndefined();
    expect(readSyncAnswer({ parentsPacked: 'AAA*' })).toBeUndefined();
  });

  it('are refused when a field is not of its type', () => {
    for (const bad of [{ parents: 'x' }, { hashes: {} }, { seedGrants: 3 }, { availability: null }, { availabilityPacked: 7 }, { availabilityPacked: 'AAA*' }]) expect(readSyncAnswer(bad)).toBeUndefined();
  });
});

describe('packed holder counts', () => {
  it('are exact below 128, then at most 9 % under the count, in the same order, up to millions', () => {
    const small = Array.from({ length: 128 }, (_, c) => c);
    expect(unpackCounts(packCounts(small), 1000)).toEqual(small);
    const large = [128, 139, 140, 255, 256, 1_000, 3_000, 9_999, 10_000, 1e6, 7.7e6];
    const back = unpackCounts(packCounts(large), 1000)!;
    large.forEach((c, i) => {
      expect(back[i]).toBeLessThanOrEqual(c);
      expect(back[i]).toBeGreaterThan(c / 1.091);
      // What came back packs to the same byte.
      expect(packCounts([back[i]!])).toBe(packCounts([c]));
    });
    for (let i = 1; i < back.length; i++) expect(back[i]).toBeGreaterThanOrEqual(back[i - 1]!);
    // One byte a piece: 128 pieces in 172 characters, where 10,000-holder counts as JSON took 640.
    expect(packCounts(Array.from({ length: 128 }, () => 9_999))).toHaveLength(172);
  });

  it('are refused unless canonical base64 of at most the pieces a blob may have', () => {
    const packed = packCounts([1, 2, 3, 200]);
    expect(unpackCounts(packed, 4)).toHaveLength(4);
    for (const bad of [`${packed}!`, `${packed.slice(0, 2)}\n${packed.slice(2)}`, packed.slice(0, 3), 42]) expect(unpackCounts(bad, 4)).toBeUndefined();
    expect(unpackCounts(packCounts(new Array(10).fill(1)), 4)).toBeUndefined();
    expect(unpackCounts(packCounts(new Array(5).fill(1)), 4)).toBeUndefined();
  });
});

describe("a task creation's answer", () => {
  const meta: MetainfoBody = { digest: `sha256:${'d'.repeat(64)}`, size: 5 << 20, pieceSize: 1 << 20, pieceCount: 5, hashes: HASHES };
  const first = syncAnswer(HASHES, { knownHashes: 5 }, { ...EMPTY_SCHEDULE, availability: [0, 0, 0, 0, 0], syncMs: 900 });
  const wire = (a: object): object => JSON.parse(JSON.stringify(a)) as object;

  it('asked terse, carries the known hashes packed, without the unknown tail, and the first schedule terse; read back as the whole answer', () => {
    const shaped = taskAnswer(meta, first, { terse: true });
    expect(shaped).toEqual({ ...meta, hashes: [], hashesPacked: packHashes(HASHES.slice(0, 4)), first: terse(first) });
    expect(readTaskAnswer(wire(shaped))).toEqual({ ...meta, first: readSyncAnswer(wire(terse(first))) });
    // Nobody holds a piece: one zero count (not an empty list, the supernode's "unchanged").
    expect(readTaskAnswer(wire(shaped))?.first?.availability).toEqual([0]);
    // Nothing known yet (a creation as the seed starts): an empty packing, every hash null when read.
    const none = taskAnswer({ ...meta, hashes: new Array(5).fill(null) }, undefined, { terse: true });
    expect(JSON.stringify(none).length).toBeLessThan(JSON.stringify({ ...meta, hashes: new Array(5).fill(null) }).length);
    expect(readTaskAnswer(wire(none))?.hashes).toEqual([null, null, null, null, null]);
    // Not asked (or a supernode from before): whole, and read as it is.
    expect(taskAnswer(meta, first, {})).toEqual({ ...meta, first });
    expect(readTaskAnswer(wire({ ...meta, first }))).toEqual({ ...meta, first });
    // Asked without hashes (a peer that reads piece proofs): none, terse or whole, the rest as asked.
    const bare = taskAnswer(meta, first, { terse: true, withoutHashes: true });
    expect(readTaskAnswer(wire(bare))).toEqual({ ...meta, hashes: [null, null, null, null, null], first: readSyncAnswer(wire(terse(first))) });
    expect(JSON.stringify(bare).length).toBeLessThan(JSON.stringify(shaped).length - 4 * 40);
    expect(taskAnswer(meta, undefined, { withoutHashes: true })).toEqual({ ...meta, hashes: [null, null, null, null, null] });
  });

  it('is refused when its packed hashes or its first schedule are malformed, or more hashes come than the blob has pieces', () => {
    const shaped = taskAnswer(meta, first, { terse: true }) as Record<string, unknown>;
    for (const bad of [{ ...shaped, hashesPacked: 'x!' }, { ...shaped, first: { parents: 'p' } }, { ...shaped, first: 3 }, { ...shaped, pieceCount: 3 }]) expect(readTaskAnswer(wire(bad))).toBeUndefined();
  });
});

describe("a sync's haves", () => {
  const DIGEST = `sha256:${'d'.repeat(64)}` as const;
  const body = (have: number[]) => ({ have, wantSeed: 0, badParents: [] });

  it('pack into a bitfield up to the largest, and read back in order', () => {
    expect(packIndexes([])).toBe('');
    expect(Buffer.from(packIndexes([0, 9]), 'base64')).toEqual(Buffer.from([0x80, 0x40]));
    const many = Array.from({ length: 120 }, (_, k) => (k * 7) % 997).sort((a, b) => a - b);
    expect(unpackIndexes(packIndexes(many), 1000)).toEqual(many);
    for (const bad of [7, 'AB==', 'A', `${packIndexes([3])}!`, Buffer.alloc(126).toString('base64')]) expect(unpackIndexes(bad, 1000)).toBeUndefined();
  });

  it('go packed only to a supernode that reads them, and only when shorter; the supernode reads both', () => {
    const few = body([7]);
    const lots = body(Array.from({ length: 60 }, (_, k) => 100 + 2 * k));
    expect(syncItem(lots, DIGEST, {})).toMatchObject({ have: lots.have });
    expect(syncItem(few, DIGEST, {}, ['havePacked'])).toMatchObject({ have: [7] });
    const packed = syncItem(lots, DIGEST, {}, ['havePacked']);
    expect(packed).not.toHaveProperty('have');
    expect(JSON.stringify(packed).length).toBeLessThan(JSON.stringify(syncItem(lots, DIGEST, {})).length / 2);
    expect(havesOf(packed)).toEqual(lots.have);
    expect(havesOf({ have: [1], havePacked: packIndexes([5]) })).toEqual([1, 5]);
    expect(havesOf({ havePacked: 'AB==' })).toBeUndefined();
    expect(havesOf({})).toEqual([]);
  });
});

describe('a batch item', () => {
  const DIGEST = `sha256:0123456789abcdef${'e'.repeat(48)}` as const;
  const body = { have: [], wantSeed: 0, badParents: [], knownHashes: 12, wantParents: 2 };
  const asked = { terse: true, packParents: true };

  it('names its task by digest with the options asked, to a supernode that does not read names', () => {
    expect(syncItem(body, DIGEST, asked)).toEqual({ digest: DIGEST, wantSeed: 0, knownHashes: 12, wantParents: 2, terse: true, packParents: true });
    expect(syncItem(body, DIGEST, asked, ['havePacked'])).toHaveProperty('digest', DIGEST);
  });

  it("names it by its digest's first 16 hex digits to one that does, the options it implies and a zero wantSeed left out", () => {
    expect(taskName(DIGEST)).toBe('0123456789abcdef');
    expect(taskName(DIGEST)).toHaveLength(TASK_NAME_HEX);
    const named = syncItem(body, DIGEST, asked, SYNC_FIELDS);
    expect(named).toEqual({ task: '0123456789abcdef', knownHashes: 12, wantParents: 2 });
    expect(syncItem({ ...body, wantSeed: 3 }, DIGEST, asked, SYNC_FIELDS)).toMatchObject({ task: '0123456789abcdef', wantSeed: 3 });
    expect(Object.keys(NAMED_ITEM_OPTIONS).sort()).toEqual(Object.keys(asked).sort());
    // 35 bytes where the digest and the options were 119.
    expect(JSON.stringify(syncItem(body, DIGEST, asked, ['havePacked'])).length - JSON.stringify(named).length).toBeGreaterThan(80);
  });

  it('names it by digest again where the supernode could not tell the name', () => {
    expect(syncItem(body, DIGEST, asked, SYNC_FIELDS, true)).toEqual({ digest: DIGEST, wantSeed: 0, knownHashes: 12, wantParents: 2, terse: true, packParents: true });
  });
});
