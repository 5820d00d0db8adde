import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { MAX_SYNC_PACE_MS } from '../../../../src/p2p/supernode-api.ts';
import { SyncPacer } from '../../../../supernode/p2p/sync-pacer.ts';
import { Tracker, type PeerRecord } from '../../../../supernode/p2p/tracker.ts';

function setup(rate: number) {
  const clock = new ManualClock(0);
  const tracker = new Tracker({ clock, onDrop: () => {} });
  const pacer = new SyncPacer({ clock }, { rate });
  const peers: PeerRecord[] = Array.from({ length: 10_000 }, (_, i) => tracker.register(`p${i}`, `10.0.0.1:${i + 1}`, 4).peer);
  return { clock, pacer, peers };
}

describe('SyncPacer', () => {
  it('asks each peer to wait so that the peers syncing lately, once per wait, make `rate` syncs a second', () => {
    const { pacer, peers } = setup(1_000);
    expect(pacer.paceMs(peers[0]!)).toBe(1);
    for (const p of peers.slice(0, 500)) pacer.paceMs(p);
    // The same peer syncing again is not another peer.
    for (let k = 0; k < 50; k++) pacer.paceMs(peers[0]!);
    expect(pacer.activePeers).toBe(500);
    expect(pacer.paceMs(peers[1]!)).toBe(500);
    for (const p of peers.slice(0, 2_000)) pacer.paceMs(p);
    expect(pacer.currentMs).toBe(2_000);
  });

  it('never asks more than MAX_SYNC_PACE_MS, and nothing without a rate', () => {
    const paced = setup(1_000);
    for (const p of paced.peers) paced.pacer.paceMs(p);
    expect(paced.pacer.currentMs).toBe(MAX_SYNC_PACE_MS);
    const free = setup(0);
    for (const p of free.peers) expect(free.pacer.paceMs(p)).toBe(0);
  });

  it('keeps counting peers paced to the longest wait, and forgets peers that stopped syncing after two windows', () => {
    const { clock, pacer, peers } = setup(100);
    const swarm = peers.slice(0, 300);
    for (const p of swarm) pacer.paceMs(p);
    expect(pacer.currentMs).toBe(3_000);
    // Each peer syncs once per wait: every window still sees all of them (and the next window starts with the last one's count).
    const at = (t: number): void => clock.advance(t - clock.now());
    for (let t = 0; t < 20_000; t += 3_000) {
      at(t);
      expect(pacer.currentMs).toBe(3_000);
      for (const p of swarm) pacer.paceMs(p);
    }
    // The swarm is done (its last syncs at 18 s): one peer still syncs; the wait falls back within two windows.
    at(20_000);
    expect(pacer.paceMs(peers[0]!)).toBe(3_000);
    at(25_000);
    expect(pacer.paceMs(peers[0]!)).toBe(10);
    // A gap of more than a window forgets everyone.
    at(60_000);
    expect(pacer.activePeers).toBe(0);
  });

  it('a paced answer carries the parents the unpaced syncs of its wait would have (at most 8), and busy heartbeats slow to a quarter of the rate', () => {
    expect(SyncPacer.parentsFor(1, 0)).toBe(1);
    expect(SyncPacer.parentsFor(1, 400)).toBe(1);
    expect(SyncPacer.parentsFor(1, 1_250)).toBe(3);
    expect(SyncPacer.parentsFor(2, 1_250)).toBe(6);
    expect(SyncPacer.parentsFor(1, MAX_SYNC_PACE_MS)).toBe(8);
    expect(SyncPacer.parentsFor(6, 3_000)).toBe(8);
    const { pacer, peers } = setup(1_000);
    for (const p of peers.slice(0, 200)) pacer.paceMs(p);
    // 200 ms a sync: busy heartbeats stay at the peers' own second.
    expect(pacer.busyHeartbeatMs(5_000)).toBe(0);
    for (const p of peers.slice(0, 1_000)) pacer.paceMs(p);
    // 1 s a sync: 1,000 peers beating every 4 s are 250 a second, a quarter of the rate; never past the idle period.
    expect(pacer.busyHeartbeatMs(5_000)).toBe(4_000);
    expect(pacer.busyHeartbeatMs(3_000)).toBe(3_000);
  });
});
