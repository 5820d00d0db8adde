import { describe, expect, it } from 'vitest';
import { TransferState } from '../../../../peer/p2p/transfer-state.ts';

describe('TransferState', () => {
  it('goes p2p → fallback → done', () => {
    const s = new TransferState();
    s.move('fallback');
    s.move('done');
    expect(s.phase).toBe('done');
    expect(s.over).toBe(true);
  });

  it('refuses to leave done or failed, and to go back to p2p', () => {
    const s = new TransferState();
    s.move('failed');
    expect(() => s.move('done')).toThrow(/cannot go from failed to done/);
    expect(s.tryMove('p2p')).toBe(false);
    const t = new TransferState();
    t.move('fallback');
    expect(t.tryMove('p2p')).toBe(false);
    expect(t.tryMove('fallback')).toBe(false);
    expect(t.phase).toBe('fallback');
  });
});
