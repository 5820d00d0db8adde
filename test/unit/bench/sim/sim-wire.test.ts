import { describe, expect, it } from 'vitest';
import type { Digest } from '../../../../src/digest.ts';
import { Bitfield } from '../../../../src/p2p/bitfield.ts';
import type { PieceProof } from '../../../../src/p2p/piece-proof.ts';
import { EventQueue } from '../../../../bench/sim/event-queue.ts';
import { SimNetwork } from '../../../../bench/sim/network.ts';
import { SIM_SIGNATURE, SimLink, type UploadSide } from '../../../../bench/sim/sim-wire.ts';

const DIGEST = `sha256:${'b'.repeat(64)}` as Digest;
const BLOCK = 256 * 1024;

/** One child linked to one parent holding two pieces, 10 ms apart, on 10 MB/s links. */
function linked(): { q: EventQueue; link: SimLink; interest: boolean[] } {
  const q = new EventQueue();
  const network = new SimNetwork(q, { latencyMs: () => 10 });
  const spec = { upBytesPerS: 10e6, downBytesPerS: 10e6 };
  const [child, host] = [network.addHost(spec), network.addHost(spec)];
  const interest: boolean[] = [];
  const parent: UploadSide = {
    host,
    accept: (l) => l.sendBitfield(Bitfield.full(2)),
    interest: (l, wants) => {
      interest.push(wants);
      if (wants) l.sendUnchoke();
      else l.sendChoke();
    },
    proof: (_d, index): PieceProof => ({ index, hash: '0'.repeat(64), signature: SIM_SIGNATURE }),
    release: () => {},
  };
  const world = { queue: q, network, latency: () => 10, body: (n: number) => Buffer.alloc(n) };
  return { q, link: new SimLink(world, DIGEST, child, parent), interest };
}

describe('a simulated wire link', () => {
  it("carries the child's interest to the parent, which unchokes it then", async () => {
    const { q, link, interest } = linked();
    q.run();
    await link.ready;
    expect(link.peerChoking).toBe(true);
    link.interested();
    q.run();
    expect([interest, link.peerChoking]).toEqual([[true], false]);
    link.interested(false);
    q.run();
    expect([interest, link.peerChoking]).toEqual([[true, false], true]);
  });

  it('delivers the proof sent ahead of a block the child cancelled on the way, once: the parent does not send it again', async () => {
    const { q, link } = linked();
    q.run();
    await link.ready;
    link.interested();
    q.run();
    const proofs: number[] = [];
    const discarded: number[] = [];
    link.on('proof', (p: PieceProof) => proofs.push(p.index));
    link.on('discarded', (index: number) => discarded.push(index));
    const first = link.request(0, 0, BLOCK);
    first.catch(() => {});
    // The block is on its way (it takes ~26 ms on the link) when the cancel comes.
    q.run({ untilMs: q.now + 15 });
    link.cancel(0, 0);
    await expect(first).rejects.toThrow(/cancelled/);
    q.run();
    expect([proofs, discarded]).toEqual([[0], [0]]);
    // Asked again on the same link: the block comes, without a second proof.
    const again = link.request(0, 0, BLOCK);
    q.run();
    expect((await again).length).toBe(BLOCK);
    expect(proofs).toEqual([0]);
  });
});
