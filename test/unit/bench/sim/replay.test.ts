import { describe, expect, it } from 'vitest';
import { runPollenSwarm, simPeerId, simWireAddr } from '../../../../bench/sim/pollen-swarm.ts';
import { mulberry32 } from '../../../../bench/sim/sim-bench.ts';
import { SIM_HASH, type TraceEvent, type TransferTrace } from '../../../../bench/sim/simulated-peer.ts';
import { SIM_PROOF_CHECK, SIM_SIGNATURE } from '../../../../bench/sim/sim-wire.ts';
import { harness } from '../../../helpers/transfer-harness.ts';

const MIB = 1024 * 1024;
const RATE = 12.5e6;
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('the simulation and a peer on a manual clock', () => {
  it('make the same decisions (dials, block requests, seed fetches) on the same sequence of events', async () => {
    // The peer to follow: the first whose transfer got pieces both from parents and from the seed,
    // so the replay covers both paths (which one does depends on the run's timing).
    let trace: TransferTrace | undefined;
    let traced = '';
    let r: Awaited<ReturnType<typeof runPollenSwarm>> | undefined;
    for (const peerId of [0, 1, 2, 3].map(simPeerId)) {
      const into: TransferTrace = { events: [], decisions: [] };
      r = await runPollenSwarm({
        peers: 4,
        blobBytes: 8 * MIB,
        pieceBytes: MIB,
        peerUpBytesPerS: RATE,
        peerDownBytesPerS: RATE,
        originUpBytesPerS: RATE,
        random: mulberry32(1),
        trace: { peerId, into },
      });
      const fromParents = into.events.some((e) => e.kind === 'link' && e.e.kind === 'block');
      const fromSeed = into.events.some((e) => e.kind === 'seed');
      // Piece proofs came from parents too (the transfer may then ask for pieces whose hash it lacks).
      expect(into.events.some((e) => e.kind === 'link' && e.e.kind === 'proof')).toBe(true);
      const start = into.events[0];
      if (fromParents && fromSeed && start?.kind === 'start' && (start.first?.parents.length ?? 0) > 0) {
        trace = into;
        traced = peerId;
        break;
      }
    }
    expect(trace).toBeDefined();
    expect(r!.unfinished).toBe(0);
    const [start, ...events] = trace!.events as [Extract<TraceEvent, { kind: 'start' }>, ...TraceEvent[]];
    expect(start.kind).toBe('start');
    // The task's creation brought the first schedule: the transfer starts on it without a sync.
    expect(start.first?.parents.length ?? 0).toBeGreaterThan(0);

    const h = harness({ pieces: r!.pieceCount, pieceBytes: r!.pieceBytes, parents: [0, 1, 2, 3].filter((i) => simPeerId(i) !== traced).map(simWireAddr), startAt: start.t, hashes: start.hashes, hashPiece: () => SIM_HASH, proofCheck: SIM_PROOF_CHECK, parentsSpeakProofs: true, random: mulberry32(start.seed), ...(start.first ? { first: start.first } : {}) });
    try {
      for (const e of events) {
        // Timers (ticks, deferred pumps) due before the event run first, each followed by its promise callbacks.
        if (e.t > h.clock.now()) {
          for (let due = h.clock.nextDueAt(); due !== undefined && due < e.t; due = h.clock.nextDueAt()) {
            h.clock.advance(due - h.clock.now());
            await flush();
          }
          h.clock.advance(e.t - h.clock.now());
          await flush();
        }
        if (e.kind === 'sync') h.supernode.answerWith(e.res);
        else if (e.kind === 'seed') h.supernode.serveSeed(e.index, { hash: SIM_HASH, signature: SIM_SIGNATURE });
        else if (e.kind === 'link') {
          const p = h.parents.get(e.parent)!;
          if (e.e.kind === 'bitfield') p.handshake(e.e.pieces);
          else if (e.e.kind === 'unchoke') p.unchokeNow();
          else if (e.e.kind === 'have') p.announce(e.e.index);
          else if (e.e.kind === 'proof') p.sendProof({ index: e.e.index, hash: SIM_HASH, signature: SIM_SIGNATURE });
          else p.deliverBlock(e.e.index, e.e.offset);
        }
        await flush();
      }
      await h.transfer.done;
      expect(h.transfer.state.phase).toBe('done');
      expect(h.decisions).toEqual(trace!.decisions);
    } finally {
      await h.transfer.close();
    }
  });
});
