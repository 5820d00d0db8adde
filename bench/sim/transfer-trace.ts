// What the simulation records of one peer's transfer, for the replay test
// (test/unit/bench/sim/replay.test.ts): what reached it through its seams, and what it decided.
import type { SyncResponse } from '../../src/p2p/supernode-api.ts';
import type { LinkObserver } from './sim-wire.ts';

/** What reached one peer's transfer through its seams, with the time, and what it decided (a replay test feeds the events to a transfer on a manual clock and compares the decisions). */
export type TraceEvent = { t: number } & (
  /** `seed`: of the transfer's own numbers (its picker's ties: seeded-random.ts). */
  | { kind: 'start'; hashes: Array<string | null>; first?: SyncResponse; seed: number }
  | { kind: 'sync'; res: SyncResponse }
  | { kind: 'seed'; index: number }
  | { kind: 'link'; parent: string; e: Parameters<LinkObserver['delivered']>[0] }
);

export interface TransferTrace {
  readonly events: TraceEvent[];
  /** `dial:<parent>`, `<parent>:<piece>/<block>`, `seed:<piece>`, in the order the transfer made them. */
  readonly decisions: string[];
}
