// The limits and timings of the preheat job manager (job-manager.ts): how often it steps its jobs
// and peers poll for work, how long a selected peer may be gone or a task go unreported, and how
// many jobs, blobs per job and kept records it takes.
export interface JobManagerOptions {
  readonly tickMs: number;
  /** A selected peer unregistered this long loses its tasks (failed). */
  readonly peerAbsentMs: number;
  /** An assignment without a report this long is handed out again (or fails). */
  readonly taskTimeoutMs: number;
  readonly maxAttempts: number;
  readonly maxRunningJobs: number;
  readonly maxBlobsPerJob: number;
  readonly maxKeptJobs: number;
  /** How often peers poll for work while a job is queued or running, and while none is (a poll is a TLS request per peer). */
  readonly pollMs: number;
  readonly idlePollMs: number;
  /** After the supernode starts, peers are chosen only once this has passed (peers register again within it). */
  readonly registrationGraceMs: number;
}

export const DEFAULT_JOB_MANAGER_OPTIONS: JobManagerOptions = {
  tickMs: 200,
  peerAbsentMs: 20_000,
  taskTimeoutMs: 10 * 60_000,
  maxAttempts: 3,
  maxRunningJobs: 4,
  maxBlobsPerJob: 1_000,
  maxKeptJobs: 500,
  pollMs: 1_000,
  idlePollMs: 5_000,
  registrationGraceMs: 5_000,
};
