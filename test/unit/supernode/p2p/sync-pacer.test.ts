import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { MAX_SYNC_PACE_MS } from '../../../../src/p2p/supernode-api.ts';
import { SyncPacer } from '../../../../supernode/p2p/sync-pacer.ts';
import { Tracker, type PeerRecord } from '../../../../supernode/p2p/tracker.ts';

function setup(rate: number, count = 10_000, answerBytesPerS = 0) {
  const clock = new ManualClock(0);
  const tracker = new Tracker({ clock, onDrop: () => {} });
  const pacer = new SyncPacer({ clock }, { rate, answerBytesPerS });
  const peers: PeerRecord[] = Array.from({ length: count }, (_, i) => tracker.register(`p${i}`, `10.0.0.1:${i + 1}`, 4).peer);
  const at = (t: number): void => clock.advance(t - clock.now());
  return { clock, pacer, peers, at };
}

/**
 * Peers that each sync first at `firstAt(i)`, then again after the wait the answer asked for (or
 * their own `everyMs`, whichever is longer), until `untilMs`: the syncs per second of the clock.
 */
function run(rate: number, count: number, firstAt: (i: number) => number, everyMs: number, untilMs: number) {
  const { pacer, peers, at } = setup(rate, count);
  const due = peers.map((_, i) => firstAt(i));
  const bySecond: number[] = [];
  const waits: number[] = [];
  for (;;) {
    let next = -1;
    for (let i = 0; i < due.length; i++) if (next < 0 || due[i]! < due[next]!) next = i;
    const t = due[next]!;
    if (t >= untilMs) break;
    at(t);
    const wait = pacer.paceMs(peers[next]!);
    waits.push(wait);
    const s = Math.floor(t / 1000);
    bySecond[s] = (bySecond[s] ?? 0) + 1;
    due[next] = t + Math.max(wait, everyMs);
  }
  return { bySecond, waits, pacer };
}

describe('SyncPacer', () => {
  it('gives each sync the next free slot, 1000 / rate ms apart: syncs that keep to their waits arrive at `rate` a second at most', () => {
    // 3,000 peers all start within 100 ms, then sync every 250 ms unless asked to wait longer.
    const { bySecond, waits } = run(1_000, 3_000, (i) => (i * 100) / 3_000, 250, 12_000);
    // The first second holds the burst itself; from then on the line holds them to the rate.
    for (const n of bySecond.slice(1)) expect(n).toBeLessThanOrEqual(1_001);
    expect(Math.min(...bySecond.slice(2))).toBeGreaterThanOrEqual(990);
    expect(Math.max(...waits)).toBeGreaterThan(2_900);
    expect(Math.max(...waits)).toBeLessThanOrEqual(3_000);
  });

  it('never slows a swarm the line keeps up with: 16 peers syncing every 250 ms are asked no wait', () => {
    const { waits, pacer } = run(8_000, 16, (i) => i, 250, 5_000);
    expect(waits.length).toBeGreaterThan(300);
    expect(new Set(waits)).toEqual(new Set([0]));
    expect(pacer.currentMs).toBe(0);
  });

  it("spaces the slots by what the answers carry when that takes the uplink's share longer than the rate's slot", () => {
    // 100,000 bytes a second of answers: 1,000-byte answers are 10 ms apart (the rate's are 1 ms).
    const { pacer, peers } = setup(1_000, 10_000, 100_000);
    for (let k = 0; k < 100; k++) pacer.answered(1_000);
    const waits = peers.slice(0, 100).map((p) => pacer.paceMs(p));
    expect(waits[99]! - waits[89]!).toBeGreaterThanOrEqual(99);
    expect(waits[99]! - waits[89]!).toBeLessThanOrEqual(101);
    // Answers of 4,000 bytes (a batch of 4 syncs of 16,000 in all): the mean follows, the slots widen.
    for (let k = 0; k < 100; k++) pacer.answered(16_000, 4);
    const later = peers.slice(100, 120).map((p) => pacer.paceMs(p));
    expect(later[19]! - later[9]!).toBeGreaterThanOrEqual(390);
    expect(later[19]! - later[9]!).toBeLessThanOrEqual(401);
    // Malformed counts change nothing; small answers leave the rate's slot.
    pacer.answered(Number.NaN);
    pacer.answered(1_000, 0);
    expect(pacer.paceMs(peers[121]!) - later[19]!).toBeGreaterThanOrEqual(39);
    for (let k = 0; k < 1_000; k++) pacer.answered(10);
    const small = peers.slice(200, 300).map((p) => pacer.paceMs(p));
    expect(small[99]! - small[89]!).toBeLessThanOrEqual(11);
    // Bytes alone pace too (no rate).
    const bytesOnly = setup(0, 10, 100_000);
    expect(bytesOnly.peers.map((p) => bytesOnly.pacer.paceMs(p)).at(-1)).toBe(90);
  });

  it("stretches the line by the answers' bytes only up to three quarters of MAX_SYNC_PACE_MS ahead, then by the rate alone", () => {
    // 10,000-byte answers at 100,000 bytes a second: 100 ms a slot; the rate's is 1 ms.
    const { pacer, peers } = setup(1_000, 10_000, 100_000);
    // A batch of 32 moves the mean all the way.
    pacer.answered(320_000, 32);
    const waits = peers.slice(0, 1_000).map((p) => pacer.paceMs(p));
    expect(waits.slice(0, 31)).toEqual(Array.from({ length: 31 }, (_, k) => k * 100));
    // Past 3 s ahead a burst is spread at the rate's slots, not pushed to the longest wait together.
    expect(waits.slice(31, 36)).toEqual([3_001, 3_002, 3_003, 3_004, 3_005]);
    expect(waits.filter((w) => w === MAX_SYNC_PACE_MS).length).toBeLessThan(2);
  });

  it('answers as large as a member can ask widen the line up to MAX_SYNC_PACE_MS, never beyond', () => {
    const { pacer, peers } = setup(1_000, 10_000, 100_000);
    // A member asking 64 MB answers over and over (far past any real one).
    for (let k = 0; k < 100; k++) pacer.answered(64e6);
    const waits = peers.map((p) => pacer.paceMs(p));
    expect(Math.max(...waits)).toBeLessThanOrEqual(MAX_SYNC_PACE_MS);
    // The first slot past 3 s ahead: from there the rate's slots, 1 ms apart.
    expect(waits.filter((w) => w < MAX_SYNC_PACE_MS).length).toBeGreaterThan(900);
  });

  it('a peer syncing before its slot keeps that slot and pushes no one back', () => {
    const { pacer, peers, at } = setup(1_000);
    for (const p of peers.slice(0, 500)) pacer.paceMs(p);
    expect(pacer.currentMs).toBe(500);
    at(10);
    // Peer 400 was given the slot at 400 ms: asked again, it is told to keep it.
    expect(pacer.paceMs(peers[400]!)).toBe(390);
    for (let k = 0; k < 100; k++) expect(pacer.paceMs(peers[400]!)).toBe(390);
    expect(pacer.currentMs).toBe(490);
    expect(pacer.paceMs(peers[500]!)).toBe(490);
    // At its slot (within the network's jitter) it takes the next free one.
    at(390);
    expect(pacer.paceMs(peers[400]!)).toBe(111);
  });

  it('never asks more than MAX_SYNC_PACE_MS nor lets the line run on past it, nothing without a rate, and drains when the peers stop', () => {
    const { pacer, peers, at } = setup(1_000);
    for (const p of peers) expect(pacer.paceMs(p)).toBeLessThanOrEqual(MAX_SYNC_PACE_MS);
    expect(pacer.currentMs).toBe(MAX_SYNC_PACE_MS);
    at(1_000);
    expect(pacer.currentMs).toBe(MAX_SYNC_PACE_MS - 1_000 + 1);
    at(MAX_SYNC_PACE_MS + 1_001);
    expect(pacer.currentMs).toBe(0);
    expect(pacer.paceMs(peers[0]!)).toBe(0);
    const free = setup(0);
    for (const p of free.peers) expect(free.pacer.paceMs(p)).toBe(0);
  });

  it('counts the peers syncing lately per window for the status page, and forgets them after two windows', () => {
    const { pacer, peers, at } = setup(100);
    for (const p of peers.slice(0, 300)) pacer.paceMs(p);
    for (let k = 0; k < 50; k++) pacer.paceMs(peers[0]!);
    expect(pacer.activePeers).toBe(300);
    at(5_000);
    pacer.paceMs(peers[0]!);
    expect(pacer.activePeers).toBe(300);
    at(10_000);
    expect(pacer.activePeers).toBe(1);
    at(60_000);
    expect(pacer.activePeers).toBe(0);
  });

  it('busy heartbeats slow to a quarter of the rate', () => {
    const { pacer, peers } = setup(1_000);
    for (const p of peers.slice(0, 200)) pacer.paceMs(p);
    // 200 ms a sync: busy heartbeats stay at the peers' own second.
    expect(pacer.busyHeartbeatMs(5_000)).toBe(0);
    for (const p of peers.slice(200, 1_000)) pacer.paceMs(p);
    // 1 s a sync: 1,000 peers beating every 4 s are 250 a second, a quarter of the rate; never past the idle period.
    expect(pacer.busyHeartbeatMs(5_000)).toBe(4_000);
    expect(pacer.busyHeartbeatMs(3_000)).toBe(3_000);
  });
});
