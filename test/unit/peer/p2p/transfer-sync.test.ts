import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { parseDigest } from '../../../../src/digest.ts';
import { apiErrorFrom, MAX_SYNC_PACE_MS, type SyncResponse } from '../../../../src/p2p/supernode-api.ts';
import { TransferSync } from '../../../../peer/p2p/transfer-sync.ts';
import type { TransferClient } from '../../../../peer/p2p/transfer-seams.ts';

const ANSWER: SyncResponse = { hashes: [], parents: [], seedGrants: [], availability: [] };

function transferSync(clock: ManualClock, answer: () => Promise<SyncResponse> = async () => ANSWER): TransferSync {
  const client = { sync: answer } as unknown as TransferClient;
  return new TransferSync({
    client,
    supernode: 'https://supernode.test',
    digest: parseDigest(`sha256:${'a'.repeat(64)}`),
    clock,
    logger: pino({ level: 'silent' }),
    wanted: () => true,
    poolFull: () => false,
    request: () => ({ wantSeed: 0, badParents: [] }),
    unsent: () => {},
    recreateTask: async () => true,
    onAnswer: () => {},
  });
}

describe('TransferSync', () => {
  it('keeps the periodic sync to the nearest tick: a tick a hair short of the period does not put it a whole tick later', async () => {
    const clock = new ManualClock(1_000);
    const sync = transferSync(clock);
    await sync.sync();
    // A quarter held (2 of 8): the period is syncMs; ticks come every 250 ms.
    const due = (at: number): boolean => {
      clock.advance(at - (clock.now() - 1_000));
      return sync.periodicDue(1_000, 2, 8, 250);
    };
    expect(due(800)).toBe(false);
    expect(due(874)).toBe(false);
    // The tick meant for 1,000 ms that came 0.1 ms early.
    expect(due(999.9)).toBe(true);
    // The supernode's pacing still holds in full.
    await sync.sync();
    sync.paceMs = 2_000;
    clock.advance(1_900);
    expect(sync.periodicDue(1_000, 2, 8, 250)).toBe(false);
    clock.advance(100);
    expect(sync.periodicDue(1_000, 2, 8, 250)).toBe(true);
  });

  it("a sync refused for the peer's allowance waits the refusal's Retry-After (as a paced answer's wait, 4 s at most) before the next routine one", async () => {
    const clock = new ManualClock(1_000);
    let refuse: number | undefined = 2;
    // As the supernode's 429 reads at the client: its body's retryAfter kept (apiErrorFrom).
    const sync = transferSync(clock, async () => {
      if (refuse === undefined) return ANSWER;
      throw apiErrorFrom(429, { errors: [{ code: 'TOOMANYREQUESTS', message: 'too fast', detail: { pollenCode: 'ERR_TOO_MANY_REQUESTS', retryAfter: refuse } }] }, 'ERR_SUPERNODE_UNAVAILABLE', {});
    });
    await sync.sync();
    clock.advance(1_999);
    expect(sync.periodicDue(500, 0, 8, 100)).toBe(false);
    clock.advance(1);
    expect(sync.periodicDue(500, 0, 8, 100)).toBe(true);
    // A longer wait than a paced answer may ask is held to MAX_SYNC_PACE_MS; an answer sets the pacing again.
    refuse = 60;
    await sync.sync();
    clock.advance(MAX_SYNC_PACE_MS - 1);
    expect(sync.periodicDue(500, 0, 8, 100)).toBe(false);
    clock.advance(1);
    expect(sync.periodicDue(500, 0, 8, 100)).toBe(true);
    refuse = undefined;
    await sync.sync();
    clock.advance(500);
    expect(sync.periodicDue(500, 0, 8, 100)).toBe(true);
    // Another error (or a retryAfter that is not a sane number of seconds) asks no wait.
    expect(apiErrorFrom(429, { errors: [{ code: 'TOOMANYREQUESTS', message: 'x', detail: { pollenCode: 'ERR_TOO_MANY_REQUESTS', retryAfter: '9' } }] }, 'ERR_SUPERNODE_UNAVAILABLE', {}).detail.retryAfter).toBeUndefined();
    expect(apiErrorFrom(503, { errors: [{ code: 'UNAVAILABLE', message: 'x', detail: { retryAfter: 9 } }] }, 'ERR_SUPERNODE_UNAVAILABLE', {}).detail.retryAfter).toBeUndefined();
  });
});
