// The phase of one transfer as a typed state machine: P2P first, the registry fallback when P2P
// stops making progress, then done (committed) or failed (the partial state kept for a resume).
// Every move goes through `move`, which refuses the ones that make no sense (done → p2p, failed →
// done, ...), so a late callback cannot revive a finished transfer.
import { PollenError } from '../../src/errors.ts';

export type TransferPhase = 'p2p' | 'fallback' | 'done' | 'failed';

const NEXT: Readonly<Record<TransferPhase, readonly TransferPhase[]>> = {
  p2p: ['fallback', 'done', 'failed'],
  fallback: ['done', 'failed'],
  done: [],
  failed: [],
};

export class TransferState {
  private current: TransferPhase = 'p2p';

  get phase(): TransferPhase {
    return this.current;
  }

  /** Done or failed: nothing more will be fetched or stored. */
  get over(): boolean {
    return this.current === 'done' || this.current === 'failed';
  }

  can(next: TransferPhase): boolean {
    return NEXT[this.current].includes(next);
  }

  /** Moves to `next`; an illegal move is a bug and throws. */
  move(next: TransferPhase): void {
    if (!this.can(next)) throw new PollenError('ERR_INTERNAL', `transfer cannot go from ${this.current} to ${next}`);
    this.current = next;
  }

  /** Moves to `next` when that is legal; false (and no change) when it is not. */
  tryMove(next: TransferPhase): boolean {
    if (!this.can(next)) return false;
    this.current = next;
    return true;
  }
}
