// A sync's answer as the route shapes it and the peer's client reads it (src/p2p/sync-answer.ts):
// the hashes the peer lacks, trimmed and packed when asked; terse, without its empty fields; and
// read back into the same answer the transfer would have had from a whole one.
import { describe, expect, it } from 'vitest';
import { hashesAfter, packHashes } from '../../../../src/p2p/metainfo.ts';
import type { MetainfoBody, SyncResponse } from '../../../../src/p2p/supernode-api.ts';
import { asShaped, packCounts, readSyncAnswer, readTaskAnswer, syncAnswer, taskAnswer, terse, unpackCounts } from '../../../../src/p2p/sync-answer.ts';
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
    expect(terse(busy)).toEqual({ hashesPacked: packHashes(['c'.repeat(64), null]), hashesFrom: 3, ...rest, availabilityPacked: packCounts(availability) });
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
      const { hashes: _a, hashesFrom: _b, ...scheduleOfTerse } = fromTerse;
      const { hashes: _c, hashesFrom: _d, ...scheduleOfWhole } = fromWhole;
      expect(scheduleOfTerse).toEqual(scheduleOfWhole);
    }
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
    expect(readTaskAnswer(wire(shaped))?.first?.availability).toEqual([0, 0, 0, 0, 0]);
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
