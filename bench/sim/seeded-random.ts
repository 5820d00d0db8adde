// Seeded randomness for the simulation: the run's numbers (start jitter, access latencies) and
// each simulated transfer's own (its piece picker's ties), so a run is the same for the same seed.

/** A seeded PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x6d2b79f5) >>> 0;
    let t = x;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of one transfer's numbers: the run's, mixed with its peer's index and its blob's. */
export function transferSeed(runSeed: number, peerIndex: number, blobIndex: number): number {
  return (runSeed ^ Math.imul(peerIndex + 1, 0x9e3779b1) ^ Math.imul(blobIndex + 1, 0x85ebca77)) >>> 0;
}
