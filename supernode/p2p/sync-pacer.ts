// How often the supernode asks its peers to sync, so that a whole swarm's syncs stay within what it
// can answer. A peer syncs every 500-1,000 ms and after every 8 MiB it verifies (250-500 ms and
// 2 MiB until 2026-12-03; peer/p2p/transfer-sync.ts): in a 10,000-peer fan-out that was ~54,000 syncs a second at the
// peak (bench sim), and each is an HTTP request over TLS whose floor alone is ~60 us of CPU
// (bench:sync): several cores. A framed message on a kept TLS connection instead still cost ~35 us
// a message on this machine (a throwaway measurement, 96 connections, JSON bodies: a read, a write
// and a wake-up each, against ~56 us for the same body as an HTTPS request), so the number of syncs
// is what has to give, as a BitTorrent tracker's `interval` does it: each answer says how long the
// peer should wait before its next sync. The waits are slots on one line, 1/rate apart: a sync takes
// the next free slot (now, if the line is idle) and is asked to come back then, so the syncs that
// keep to their waits arrive at `rate` a second at most, a burst included (every peer's first sync
// at once in a large fan-out). A small swarm (the bed's 16 hosts) never finds the line busy and is
// never slowed; a large one trades fresher haves for a supernode that keeps up. A peer that syncs
// before its slot keeps that slot (it cannot push the others back), and is still held to its
// request budget (../http/peer-request-budget.ts).
// The answers also share the uplink of the supernode's host with the seed's pieces. With
// `answerBytesPerS` the slots are spaced by what an answer carries as well (the mean of the last
// ones, HTTP around them included), up to 3 s ahead: a swarm's answers then take that much of the
// uplink at most, unless it is so large that even 3 s of waits do not hold them there. Simulated
// 3,000 peers, 64 MiB, 100 Mbit/s links: paced at 8,000 syncs a second, the answers were 1.2 x S
// on the supernode's uplink and the pull took 14.1 s (2.6 x T*); spaced by their bytes at 1.25 MB/s,
// 12.0 s (DEFAULT_SYNC_ANSWER_BYTES_PER_S has the trade-off at 10,000 peers).
import type { Clock } from '../../src/clock.ts';
// A peer moving bytes heart-beats every second for the status page's rates; paced, every
// HEARTBEATS_PER_SYNC_WAIT sync waits (at most the idle period), so busy heartbeats stay within a
// quarter of `rate`.
import { HEARTBEATS_PER_SYNC_WAIT, MAX_SYNC_PACE_MS, type HeartbeatResponse } from '../../src/p2p/supernode-api.ts';
import type { Digest } from '../../src/digest.ts';
import { FRAME_HEAD_BYTES } from '../../src/p2p/sync-channel-frames.ts';
import type { Schedule, ScheduleAsk, Scheduler } from './scheduler.ts';
import type { PeerRecord } from './tracker.ts';

/**
 * Syncs a second the supernode aims at: ~0.6-0.7 of a core on a 2-core PVM guest at 75-85 us a
 * sync (its request, bench:sync, and the scheduler's work, bench sim).
 */
export const DEFAULT_SYNC_RATE = 8_000;
/**
 * Bytes a second of the supernode host's uplink its answers aim at: 40 Mbit/s (a bed-sized swarm
 * uses a hundredth of it and is never slowed). Simulated on 100 Mbit/s links, 64 MiB: 1.25 MB/s
 * is the better budget up to a few thousand peers (1,000: 8.8 s against 9.7; 3,000: 12.0 s) and
 * the worse at 10,000 (22.5 s against 15.3: waits of 3 s leave the haves too old), 2.5 MB/s
 * between (9.3 and 18.4 s); counting syncs alone, 9.6 and 16.6 s.
 */
export const DEFAULT_SYNC_ANSWER_BYTES_PER_S = 5_000_000;
/**
 * A JSON answer's status line and headers at most (content type and length; ../http/apps.ts sends
 * nothing else), with a length of up to five digits. A test reads the real app's heads against it.
 */
export const ANSWER_HEAD_BYTES = 74;
/** A TLS 1.3 record's header, inner content type and AES-GCM tag. */
export const TLS_RECORD_BYTES = 22;
/** The IPv4 and TCP headers of a packet (with the timestamp option). */
export const TCP_IP_BYTES = 52;
/** What an answer carries besides its JSON: its head, a TLS record around it, its packet's headers. */
export const ANSWER_OVERHEAD_BYTES = ANSWER_HEAD_BYTES + TLS_RECORD_BYTES + TCP_IP_BYTES;
/** The same for an answer on a sync channel: its frame's head instead of an HTTP head (src/p2p/sync-channel-frames.ts). */
export const CHANNEL_ANSWER_OVERHEAD_BYTES = FRAME_HEAD_BYTES + TLS_RECORD_BYTES + TCP_IP_BYTES;
/** An answer's bytes before any is measured (a sync answer of a 64 MiB blob, 1,000 peers, simulated). */
const FIRST_ANSWER_BYTES = 1_000;
/** How much each answer moves the mean of answer bytes. */
const ANSWER_BYTES_WEIGHT = 1 / 32;
/** How far ahead the answers' bytes may stretch the line of slots (see spacingMs). */
const BYTES_LINE_MS = (MAX_SYNC_PACE_MS * 3) / 4;
/** Peers are counted per window; longer than MAX_SYNC_PACE_MS so that a paced peer is counted in every one. */
export const SYNC_PACE_WINDOW_MS = 5_000;
/** A sync this much before its slot or less takes a new one (the peer's wait counts from when it sent). */
export const EARLY_GRACE_MS = 50;

export class SyncPacer {
  private readonly clock: Clock;
  private readonly rate: number;
  /** The window each peer last synced in (weak: a dropped peer's record goes). */
  private readonly seenIn = new WeakMap<PeerRecord, number>();
  private window = -1;
  private current = 0;
  private previous = 0;
  /** The slot each peer was last given (clock ms). */
  private readonly slotOf = new WeakMap<PeerRecord, number>();
  /** The first slot not given yet (clock ms; fractional: slots are spacingMs() apart). */
  private nextSlot = 0;
  private readonly answerBytesPerS: number;
  /** The mean bytes of an answer that took a slot (answered). */
  private answerBytes = FIRST_ANSWER_BYTES;

  /** At most `rate` syncs a second and `answerBytesPerS` bytes of their answers (0: not counted; both 0: no pacing). */
  constructor(deps: { clock: Clock }, options: { rate: number; answerBytesPerS?: number }) {
    this.clock = deps.clock;
    this.rate = options.rate;
    this.answerBytesPerS = options.answerBytesPerS ?? 0;
  }

  /** `syncs` answers that took slots (a batch's items together) were `bytes` in all, overhead included. */
  answered(bytes: number, syncs = 1): void {
    if (!(syncs > 0) || !(bytes >= 0)) return;
    this.answerBytes += (bytes / syncs - this.answerBytes) * Math.min(1, syncs * ANSWER_BYTES_WEIGHT);
  }

  /** The mean bytes of an answer that took a slot (what the status page shows). */
  get meanAnswerBytes(): number {
    return this.answerBytes;
  }

  /**
   * The spacing after a slot `ahead` ms from now: the rate's, or an answer's time on
   * the uplink's share if longer while the line runs less than BYTES_LINE_MS ahead. Past that the
   * answers' bytes stop stretching it: a line pushed to MAX_SYNC_PACE_MS asks every sync the same
   * longest wait, and a burst (a fan-out's start) comes back as a burst every 4 s (simulated
   * 10,000 peers, 64 MiB: waves 4 s apart, haves 4 s old, the seed sending 2.7 x S, 21.0 s).
   */
  private spacingMs(ahead: number): number {
    const rate = this.rate > 0 ? 1000 / this.rate : 0;
    if (this.answerBytesPerS <= 0 || ahead >= BYTES_LINE_MS) return rate;
    // Not past BYTES_LINE_MS in one step either: one huge mean would push the line to the limit.
    return Math.max(rate, Math.min((this.answerBytes * 1000) / this.answerBytesPerS, BYTES_LINE_MS - ahead));
  }

  private get paced(): boolean {
    return this.rate > 0 || this.answerBytesPerS > 0;
  }

  /** Counts `peer` as syncing now and answers how long it should wait before its next sync (ms). */
  paceMs(peer: PeerRecord): number {
    const window = this.roll();
    if (this.seenIn.get(peer) !== window) {
      this.seenIn.set(peer, window);
      this.current++;
    }
    if (!this.paced) return 0;
    const now = this.clock.now();
    const held = this.slotOf.get(peer);
    // Before its slot (beyond the clocks' and the network's jitter): the peer keeps its place.
    if (held !== undefined && held - now > EARLY_GRACE_MS) return Math.ceil(held - now);
    const slot = Math.min(Math.max(this.nextSlot, now), now + MAX_SYNC_PACE_MS);
    this.nextSlot = slot + this.spacingMs(slot - now);
    this.slotOf.set(peer, slot);
    return Math.floor(slot - now);
  }

  /** Peers that synced in this window or the last (whichever counted more): the status page's count. */
  get activePeers(): number {
    this.roll();
    return Math.max(this.current, this.previous);
  }

  /**
   * The wait a sync arriving now is asked: how far the line of slots runs ahead of now, at most
   * MAX_SYNC_PACE_MS (a swarm that needs more wants another supernode: digests are spread over
   * supernodes by rendezvous hashing).
   */
  get currentMs(): number {
    if (!this.paced) return 0;
    return Math.floor(Math.min(MAX_SYNC_PACE_MS, Math.max(0, this.nextSlot - this.clock.now())));
  }

  /** How often a busy peer should heart-beat now (0: as it likes, every second), at most `idleMs`. */
  busyHeartbeatMs(idleMs: number): number {
    const ms = this.currentMs * HEARTBEATS_PER_SYNC_WAIT;
    return ms <= 1_000 ? 0 : Math.min(ms, idleMs);
  }

  /** A heartbeat's answer: with the busy period when the pacing asks one (the route and the simulation). */
  heartbeatAnswer(idleMs: number): HeartbeatResponse {
    const busyHeartbeatMs = this.busyHeartbeatMs(idleMs);
    return busyHeartbeatMs > 0 ? { ok: true, busyHeartbeatMs } : { ok: true };
  }

  /** Moves to the window of now (the one before is kept only if it was the last one). */
  private roll(): number {
    const window = Math.floor(this.clock.now() / SYNC_PACE_WINDOW_MS);
    if (window !== this.window) {
      this.previous = window === this.window + 1 ? this.current : 0;
      this.current = 0;
      this.window = window;
    }
    return window;
  }
}

/**
 * One sync's schedule with the wait its answer asks: what the sync route answers, and what the
 * simulation's supernode answers, from the same code. The parents the wait is worth come with this
 * answer as well as the next (Scheduler.parentCredit).
 */
export function pacedSchedule(scheduler: Scheduler, pacer: SyncPacer | undefined, peer: PeerRecord, digest: Digest, wantSeed: number, ask: ScheduleAsk): Schedule & { syncMs?: number } {
  const syncMs = pacer?.paceMs(peer) ?? 0;
  const schedule = scheduler.schedule(digest, peer.peerId, wantSeed, { ...ask, aheadMs: syncMs });
  return syncMs === 0 ? schedule : { ...schedule, syncMs };
}
