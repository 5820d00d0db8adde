// Which holders a parent scan reads when a task has more than the scheduler's scanLimit: `count`
// positions of the task's holder array, from a random start at a random stride that shares no
// factor with the array's length, so the positions are distinct and spread over the whole swarm.
//
// A window that moved on by scanLimit at every scan cut the holders into fixed blocks (exactly so
// when the swarm is a multiple of scanLimit): each scan balanced children within its block and
// nothing balanced them between blocks, so whole blocks were offered to many children while others
// idled. Simulated 1,000 peers, 64 MiB, paced to 4 s (`bench sim --sync-rate 250`, seed 1), at 3 s:
// every holder of a window had the same children as the others, 4 in one, 11 in the next; 124
// parents served 10 children and kept an 11th choked while 2,100 upload slots stood free, and the
// last peers, three of whose eight parents had choked them since 2.5 s, finished at 9.10 s.
// Random windows overlap in every way, so a loaded holder always meets less loaded ones: at 3 s
// every holder served 7-9 children, none waited, and all-done came at 6.98 s (median 7.01 -> 6.62).
// Paced to 2.5 s (seed 1) 7.73 -> 6.69 s; not paced 6.72 -> 6.51 (seed 2: 6.64 -> 6.51). A window
// of consecutive holders from a random start mixed too slowly (9.10 -> 8.27 s: neighbours balanced
// each other, blocks far apart did not), ten runs of ten at a random stride did better (7.58).
// A random window costs cache misses (its holders are not side by side in memory): the default
// scanLimit went from 100 to 50 with it, which scores as well (scheduler-options.ts).

export interface ScanWindow {
  readonly start: number;
  readonly stride: number;
  readonly count: number;
}

/** `count` = min(limit, n) distinct positions of [0, n): start + k * stride modulo n, k < count. */
export function scanWindow(n: number, limit: number, random: () => number): ScanWindow {
  if (n <= limit) return { start: 0, stride: 1, count: n };
  const start = Math.floor(random() * n);
  let stride = 1 + Math.floor(random() * (n - 1));
  while (gcd(stride, n) !== 1) stride = stride + 1 < n ? stride + 1 : 1;
  return { start, stride, count: limit };
}

/** The positions of `w` in order (for callers that need them in a list; the scan steps inline). */
export function* windowPositions(w: ScanWindow, n: number): Generator<number> {
  let at = w.start;
  for (let k = 0; k < w.count; k++) {
    yield at;
    at += w.stride;
    if (at >= n) at -= n;
  }
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
