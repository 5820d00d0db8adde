import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import type { Digest } from '../../../../src/digest.ts';
import { AccessCache } from '../../../../peer/mirror/access-control.ts';

const D1 = `sha256:${'1'.repeat(64)}` as Digest;
const D2 = `sha256:${'2'.repeat(64)}` as Digest;

describe('AccessCache', () => {
  const alice = { baseUrl: 'http://r', name: 'private/app', authorization: 'Basic YWxpY2U6cHc=', object: { kind: 'blob', digest: D1 } } as const;
  const anonymous = { ...alice, authorization: undefined };

  it('trusts an allowance for the TTL only, per credential, registry, repository and object', () => {
    const clock = new ManualClock();
    const cache = new AccessCache({ clock }, { ttlMs: 1000, graceMs: 10_000 });
    cache.allow(alice);
    expect(cache.isFresh(alice)).toBe(true);
    expect(cache.isFresh(anonymous)).toBe(false);
    expect(cache.isFresh({ ...alice, name: 'private/other' })).toBe(false);
    expect(cache.isFresh({ ...alice, baseUrl: 'http://other' })).toBe(false);
    expect(cache.isFresh({ ...alice, object: { kind: 'blob', digest: D2 } })).toBe(false);
    expect(cache.isFresh({ ...alice, object: { kind: 'manifest', digest: D1 } })).toBe(false);
    clock.advance(1000);
    expect(cache.isFresh(alice)).toBe(false);
    expect(cache.isWithinGrace(alice)).toBe(true);
    expect(cache.isWithinGrace({ ...alice, object: { kind: 'blob', digest: D2 } })).toBe(false);
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

  it('keys cannot be confused by separators inside a name or credential', () => {
    const cache = new AccessCache({ clock: new ManualClock() }, { ttlMs: 1000, graceMs: 10_000 });
    cache.allow({ ...alice, baseUrl: 'http://r a', name: 'b' });
    expect(cache.isFresh({ ...alice, baseUrl: 'http://r', name: 'a b' })).toBe(false);
  });
});
