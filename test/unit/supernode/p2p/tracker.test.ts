import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { HEARTBEAT_MS, PEER_TTL_MS, REPORT_WINDOW_MS, REPORTS_PER_WINDOW, Tracker } from '../../../../supernode/p2p/tracker.ts';

function setup() {
  const clock = new ManualClock(1_000);
  const tracker = new Tracker({ clock, onDrop: () => {} });
  return { clock, tracker };
}

describe('Tracker identities', () => {
  it("refuses to register a live peer's id again without that peer's token, and keeps its record and address", () => {
    const { tracker } = setup();
    const a = tracker.register('a', '10.0.0.1:65002', 4);
    const b = tracker.register('b', '10.0.0.2:65002', 4);
    expect(a.token).not.toBe(b.token);
    for (const token of [undefined, b.token, `a.${'x'.repeat(43)}`, `${a.token}x`, 'garbage']) {
      expect(() => tracker.register('a', '10.9.9.9:1', 1, token)).toThrow(expect.objectContaining({ code: 'ERR_PEER_ID_TAKEN' }));
    }
    expect(tracker.get('a')?.wireAddr).toBe('10.0.0.1:65002');
    // With its own token the same peer moves, and keeps its token.
    const again = tracker.register('a', '10.0.0.3:65002', 2, a.token);
    expect(again.peer).toBe(a.peer);
    expect(again.token).toBe(a.token);
    expect(tracker.get('a')?.wireAddr).toBe('10.0.0.3:65002');
  });

  it('names exactly the peer a token was issued to; a mangled or foreign token names nobody', () => {
    const { tracker } = setup();
    const a = tracker.register('a', '10.0.0.1:1', 1);
    const b = tracker.register('b', '10.0.0.2:1', 1);
    expect(tracker.authenticate(a.token)?.peerId).toBe('a');
    expect(tracker.authenticate(b.token)?.peerId).toBe('b');
    const secretOfB = b.token.slice(b.token.lastIndexOf('.') + 1);
    for (const t of [`a.${secretOfB}`, a.token.slice(0, -1), 'a.', '.x', '', 'nobody.x', a.token.replace(/^a/, 'b')]) {
      expect(tracker.authenticate(t)).toBeUndefined();
    }
  });

  it("a dropped peer's token is dead, and its id can be taken by a new registration with a new token", () => {
    const { clock, tracker } = setup();
    const a = tracker.register('a', '10.0.0.1:1', 1);
    clock.advance(PEER_TTL_MS + 1);
    tracker.sweep();
    expect(tracker.authenticate(a.token)).toBeUndefined();
    const again = tracker.register('a', '10.0.0.1:1', 1);
    expect(again.token).not.toBe(a.token);
    expect(tracker.authenticate(a.token)).toBeUndefined();
  });

  it('counts at most REPORTS_PER_WINDOW reports per peer and window', () => {
    const { clock, tracker } = setup();
    const { peer } = tracker.register('reporter', '10.0.0.1:1', 1);
    let counted = 0;
    for (let i = 0; i < 3 * REPORTS_PER_WINDOW; i++) if (tracker.chargeReport(peer)) counted++;
    expect(counted).toBe(REPORTS_PER_WINDOW);
    clock.advance(REPORT_WINDOW_MS);
    expect(tracker.chargeReport(peer)).toBe(true);
  });
});

describe('Tracker reports', () => {
  it('keeps what a report leaves out (a report of what changed), and a whole one replaces each field', () => {
    const { tracker } = setup();
    const { peer } = tracker.register('a', '10.0.0.1:1', 4);
    expect(tracker.heartbeat('a', { version: '1.2.3', storeQuotaBytes: 1_000, storeBytes: 1, uploadedBytes: 2, downloadedBytes: 3 })).toBe(true);
    expect(tracker.heartbeat('a', { storeBytes: 10, downloadedBytes: 30 })).toBe(true);
    expect(peer.report).toEqual({ version: '1.2.3', storeQuotaBytes: 1_000, storeBytes: 10, uploadedBytes: 2, downloadedBytes: 30 });
    expect(tracker.heartbeat('a', {})).toBe(true);
    expect(peer.report).toEqual({ version: '1.2.3', storeQuotaBytes: 1_000, storeBytes: 10, uploadedBytes: 2, downloadedBytes: 30 });
    expect(tracker.heartbeat('a', { version: '1.2.4', storeQuotaBytes: 2_000, storeBytes: 11, uploadedBytes: 12, downloadedBytes: 13 })).toBe(true);
    expect(peer.report).toEqual({ version: '1.2.4', storeQuotaBytes: 2_000, storeBytes: 11, uploadedBytes: 12, downloadedBytes: 13 });
  });
});

describe('Tracker liveness', () => {
  it("halves a peer's picks every second of the clock whether it heart-beats or not, and drops it only after PEER_TTL_MS of silence", () => {
    const { clock, tracker } = setup();
    const { peer } = tracker.register('a', '10.0.0.1:1', 4);
    peer.picks = 64;
    clock.advance(1_000);
    tracker.sweep();
    expect(peer.picks).toBe(32);
    clock.advance(3_000);
    tracker.sweep();
    expect(peer.picks).toBe(4);
    // A heartbeat leaves the picks alone (its period is the peers' business).
    tracker.heartbeat('a');
    expect(peer.picks).toBe(4);
    expect(HEARTBEAT_MS * 4).toBeLessThanOrEqual(PEER_TTL_MS);
    clock.advance(PEER_TTL_MS - 1);
    tracker.sweep();
    expect(tracker.get('a')).toBe(peer);
    clock.advance(2);
    tracker.sweep();
    expect(tracker.get('a')).toBeUndefined();
  });
});
