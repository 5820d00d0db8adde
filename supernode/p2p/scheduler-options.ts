// The scheduler's knobs and their defaults, each with the measurement that chose it (bench sim and
// the fan-out bed). The supernode's --max-parents sets one of them; the simulation sets any.
export interface SchedulerOptions {
  readonly maxParents: number;
  readonly scanLimit: number;
  readonly seedLeaseMs: number;
  readonly maxSeedGrants: number;
  /**
   * An asker offered parents less than this long ago gets none (its haves are still counted and its
   * seed grants still given; a starved asker is always scanned for). 0, the default, scans at every
   * sync. Simulated (64 MiB, seed 1), 400 ms left 1,000 peers at 1.78 x T* (1.77) but slowed 10,000
   * to 2.38 x T* (1.96): fewer offers. Kept for `pollen bench sim --offer-interval-ms`, to weigh a
   * supernode's CPU against the fan-out.
   */
  readonly offerIntervalMs: number;
  /**
   * maxParents are offered for each period of this length since the asker's last offer (to the
   * nearest; one period at least): see DEFAULT_OFFER_PERIOD_MS. 0: maxParents an answer.
   */
  readonly offerPeriodMs: number;
  /**
   * An asker sent the task's availability less than this long ago gets an empty list instead (it
   * keeps the last one). The availability is a count per piece in every answer: 434 of a sync
   * answer's 1,288 bytes on average at 1,000 simulated peers and 128 pieces, ~4 KB at MAX_PIECES,
   * all of it on the supernode host's uplink beside the seed's pieces. 0 sends it every time.
   */
  readonly availabilityIntervalMs: number;
}

/**
 * offerPeriodMs: a transfer's parent pool grows with time, not with its syncs. A peer synced every
 * 500 ms until it held a quarter of a blob, then every second (every 2 s quiet: peer/p2p/transfer-sync.ts),
 * and at one parent an answer a large swarm's peers reached their 8 parents only ~4.5 s into a
 * 64 MiB pull, while each parent's uplink was shared by ~8.5 children: a peer with 4-5 parents got
 * 0.5-0.8 of its downlink, and the last peers were those that synced least. One parent per 250 ms
 * (two an answer early, four later): simulated 1,000 peers, 64 MiB in 128 KiB pieces, all-done
 * 7.04 / 7.01 -> 6.73 / 6.95 s (seeds 1 / 2), median 6.67 / 6.66 -> 6.58 / 6.57, p99 6.86 / 6.92
 * -> 6.66 / 6.70; per 500 ms 7.03 s (seed 1: the same as per answer), per 125 ms 6.87. A paced
 * asker (told to wait: sync-pacer.ts) got the parents its wait was worth only after the wait, where
 * the pacer's old rule gave one per 500 ms of it with the answer that asked it: 10,000 peers (seed
 * 2) left a tail, all-done 7.92 -> 8.40 s (1.475 -> 1.565 x T*). The answer now offers the larger
 * of the two (Scheduler.parentCredit): 8.00 s (1.490 x), median 7.88; crediting the coming wait in
 * place of the next answer's, 8.08 s (bench/README, forty-ninth session). On seed 1 the same rule
 * leaves six peers after 1.5 x T*: 8.79 s (1.637 x), median 7.85, p99 7.94 (fiftieth session);
 * with parents chosen by their children too (parent-load.ts) one: 8.06 s (1.501 x), p99 7.98.
 */
export const DEFAULT_OFFER_PERIOD_MS = 250;

/**
 * maxParents: parents offered per sync (measured so; now per offerPeriodMs since the last offer). A
 * peer dials what it is offered up to its own limit (8 per transfer, its host's budget shared), so
 * 6 at a time filled its pool at its first sync with the holders of that moment, the same few early
 * peers for everyone, which then served a crowd while later holders idled; fewer at a time fill it
 * over a few syncs from whoever is best placed by then. Simulated 64 MiB, free CPU: N = 1,000 8.38
 * s with 6, 7.94 with 2, 7.76 with 1 (1.56, 1.48, 1.45 x T*); N = 3,000 8.14 -> 8.03 s and N =
 * 10,000 8.6 -> 8.3 s (1.60 -> 1.55 x, 2 -> 1); N = 300 7.75 with 6, 7.52 with 2 (3: 7.61, 4: 7.67,
 * 10: 8.47); N = 4 to 100, and --cores 2 at N = 4 / 8 / 16, within 2 % between 2 and 1. The bed (N
 * = 4 / 8 / 16, 64 MiB, two interleaved pairs, 2 against 1): 7.44, 7.41 / 9.08, 9.30 / 21.79, 19.64
 * s against 7.66, 7.46 / 8.80, 9.20 / 20.00, 20.10 s, CPU alike (its noise; 6 against 2 earlier:
 * 7.95, 7.26 / 9.80, 9.97 / 20.37, 20.01 s against 7.25, 7.30 / 9.79, 9.16 / 20.18, 19.55).
 */
export const DEFAULT_MAX_PARENTS = 1;
/** Parents in one answer at most (a peer dials 8 per transfer at most): maxParents is at most this too. */
export const MAX_OFFERED_PARENTS = 8;

/**
 * availabilityIntervalMs: how often an asker gets the pieces' holder counts (between, an empty
 * list: "unchanged"). Once a second (peers synced every 250-500 ms then): bench sim, 1,000 peers, 64 MiB,
 * the API on the links: 12.3 -> 12.0 s, the answers 0.83 -> 0.62 x S. With piece proofs the
 * counts became the largest part of an answer (3,000 peers: 152 bytes a sync, 0.19 x S, beside
 * 220 of HTTP), and every 4 s: 3,000 peers 1.96 -> 1.87 x T* (2 s: 1.91), the answers 0.64 ->
 * 0.51 x S; 1,000 peers 1.60 either way. A peer's picker adds its connected parents' counts,
 * which change with every have, so it is the swarm-wide order that is up to 4 s old.
 */
export const DEFAULT_AVAILABILITY_INTERVAL_MS = 4_000;

/**
 * scanLimit: holders scored per sync. With windows that moved on by scanLimit, simulated 1,000
 * peers, 64 MiB (seeds 1, 2): 200 gave 2.01 / 2.06 x T*, 100 2.04 / 2.07, 64 2.08 / 2.12. Windows
 * drawn at random (scan-window.ts) mix the swarm at every scan, and 50 do what 100 did (1,000 peers,
 * seed 1: 6.53 against 6.51 s; paced to 2.5 s 6.70 against 6.69), at half the cost: the holders of
 * a random window are not next to each other in memory, and a scan of 100 at 10,000 holders and
 * 512 pieces took ~64 us of CPU against ~34 for 100 side by side; 50, ~38 us (medians of five, a
 * loaded machine).
 */
export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = { maxParents: DEFAULT_MAX_PARENTS, scanLimit: 50, seedLeaseMs: 10_000, maxSeedGrants: 4, offerIntervalMs: 0, offerPeriodMs: DEFAULT_OFFER_PERIOD_MS, availabilityIntervalMs: DEFAULT_AVAILABILITY_INTERVAL_MS };
