import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { AccessCache } from '../../../../peer/mirror/access-control.ts';

describe('AccessCache', () => {
  const alice = { baseUrl: 'http://r', name: 'private/app', authorization: 'Basic YWxpY2U6cHc=' };
  const anonymous = { ...alice, authorization: undefined };

  it('trusts an allowance for the TTL only, per credential', () => {
    const clock = new ManualClock();
    const cache = new AccessCache({ clock }, { ttlMs: 1000, graceMs: 10_000 });
    cache.allow(alice);
    expect(cache.isFresh(alice)).toBe(true);
    expect(cache.isFresh(anonymous)).toBe(false);
    expect(cache.isFresh({ ...alice, name: 'private/other' })).toBe(false);
    clock.advance(1000);
    expect(cache.isFresh(alice)).toBe(false);
    expect(cache.isWithinGrace(alice)).toBe(true);
    clock.advance(10_000);
    expect(cache.isWithinGrace(alice)).toBe(false);
  });

  it('forgets an allowance at once when the upstream refuses', () => {
    const cache = new AccessCache({ clock: new ManualClock() }, { ttlMs: 1000, graceMs: 10_000 });
    cache.allow(alice);
    cache.revoke(alice);
    expect(cache.isFresh(alice)).toBe(false);
    expect(cache.isWithinGrace(alice)).toBe(false);
  });
});
