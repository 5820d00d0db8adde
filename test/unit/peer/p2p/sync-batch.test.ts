// What goes in one request of syncs: one sync a task (the supernode refuses a repeat in a batch),
// at most SYNCS_PER_REQUEST, the rest waiting in their order for the next request.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Digest } from '../../../../src/digest.ts';
import { SYNCS_PER_REQUEST, takeBatch, type QueuedSync } from '../../../../peer/p2p/sync-batch.ts';

const queued = (c: string, n: number): QueuedSync => ({ digest: `sha256:${c.repeat(64)}` as Digest, body: { have: [n], wantSeed: 0, badParents: [] }, resolve: () => {}, reject: () => {} });
const tag = (q: QueuedSync): string => `${q.digest.slice(7, 8)}${q.body.have[0]}`;

describe('takeBatch', () => {
  it("takes a task's first sync; its later one waits in its place for the next request", () => {
    const waiting = [queued('a', 1), queued('b', 1), queued('a', 2), queued('c', 1), queued('a', 3)];
    expect(takeBatch(waiting).map(tag)).toEqual(['a1', 'b1', 'c1']);
    expect(waiting.map(tag)).toEqual(['a2', 'a3']);
    expect(takeBatch(waiting).map(tag)).toEqual(['a2']);
    expect(takeBatch(waiting).map(tag)).toEqual(['a3']);
    expect(takeBatch(waiting)).toEqual([]);
  });

  it('any queue: a batch of distinct tasks, at most SYNCS_PER_REQUEST, nothing lost or reordered', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...'0123456789abcdefghijklmnopqrst'), { maxLength: 60 }), (chars) => {
        const all = chars.map((c, n) => queued(c, n));
        const waiting = [...all];
        const batches: QueuedSync[][] = [];
        for (let batch = takeBatch(waiting); batch.length > 0; batch = takeBatch(waiting)) batches.push(batch);
        expect(waiting).toEqual([]);
        for (const batch of batches) {
          expect(batch.length).toBeLessThanOrEqual(SYNCS_PER_REQUEST);
          expect(new Set(batch.map((q) => q.digest)).size).toBe(batch.length);
        }
        // Every sync sent once, and each task's syncs in the order asked.
        const sent = batches.flat();
        expect(new Set(sent)).toEqual(new Set(all));
        for (const c of new Set(chars)) expect(sent.filter((q) => q.digest.startsWith(`sha256:${c}`))).toEqual(all.filter((q) => q.digest.startsWith(`sha256:${c}`)));
        // The first batch is the queue's first sync of each task, in order, up to the limit.
        const firsts = all.filter((q, k) => all.findIndex((o) => o.digest === q.digest) === k).slice(0, SYNCS_PER_REQUEST);
        expect(batches[0] ?? []).toEqual(firsts);
      }),
    );
  });
});
