// A simulated wire connection between a child and a parent, for one blob (as a real one is keyed by
// its digest). The child's side is the
// ParentConnection the real P2pTransfer dials (peer/p2p/transfer-seams.ts); the parent's side is
// driven by the simulated peer's upload slots (simulated-peer.ts). Every message takes the one-way
// latency; blocks go one after another as flows on the network model (one TCP stream: the next
// block follows the last without waiting the latency again). A cancel rejects the child's request
// at once (as the wire does) but does not stop the block: the real uploader writes a block into
// its socket as soon as it has read it, so the kernel holds what the child's window asked before
// a cancel can reach the parent (the bed's parents held 0.3-1.1 MB per child in their send
// queues). The block still crosses the link and the child drops it ('discarded'). A choke drops
// the requests the parent had not started, each rejected to the child (the wire's REJECT_EXT), and
// a request that reaches a choking parent is rejected too; the child gives up only those. The
// parent sends a piece's proof (src/p2p/piece-proof.ts) ahead of the first block of it the child
// gets, if it has one, as the uploader does: its 100 bytes travel with that block.
import { EventEmitter } from 'node:events';
import type { Digest } from '../../src/digest.ts';
import { Bitfield } from '../../src/p2p/bitfield.ts';
import { PollenError } from '../../src/errors.ts';
import { PROOF_BYTES, type PieceProof } from '../../src/p2p/piece-proof.ts';
import type { ParentConnection } from '../../peer/p2p/transfer-seams.ts';
import type { ProofCheck } from '../../peer/p2p/transfer-proofs.ts';
import type { SlotHolder } from '../../peer/p2p/upload-slots.ts';
import type { EventQueue } from './event-queue.ts';
import type { HostId, SimNetwork, Transfer } from './network.ts';

/**
 * The simulation's proofs: every signature is this one, and every check passes (the model has no
 * forging parents; a proof's bytes and when it comes are what it models).
 */
export const SIM_SIGNATURE = Buffer.alloc(64);
export const SIM_PROOF_CHECK: ProofCheck = { verify: () => true };

export interface WireWorld {
  readonly queue: EventQueue;
  readonly network: SimNetwork;
  latency(a: HostId, b: HostId): number;
  /** Bytes of a block's body (views of one buffer: the simulation does not hash). */
  body(length: number): Buffer;
}

/** The parent's side as the link needs it. */
export interface UploadSide {
  readonly host: HostId;
  /** A child connected for `link.digest`: the parent answers with its bitfield of that blob. */
  accept(link: SimLink): void;
  /** The child says it wants pieces (BEP 3 interested: a slot when one is free), or no longer does. */
  interest(link: SimLink, wants: boolean): void;
  /** The parent's proof of a piece of `digest`, if it has one. */
  proof(digest: Digest, index: number): PieceProof | undefined;
  /** The child went away (its slot is free again). */
  release(link: SimLink): void;
}

/** What crosses a link to the child, and what the child asks (the simulation's trace of one transfer). */
export interface LinkObserver {
  delivered(e: { kind: 'bitfield'; pieces: number[] } | { kind: 'unchoke' } | { kind: 'have'; index: number } | { kind: 'proof'; index: number } | { kind: 'block'; index: number; offset: number }): void;
  requested(index: number, offset: number): void;
}

interface BlockRequest {
  readonly index: number;
  readonly offset: number;
  readonly length: number;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
  settled: boolean;
  /** Settled by the child's cancel (a block that still comes is reported as cancelled). */
  cancelled?: boolean;
  /** The piece's proof, sent ahead of this block. */
  proof?: PieceProof;
}

export class SimLink extends EventEmitter implements ParentConnection {
  readonly ready: Promise<void>;
  isClosed = false;
  peerChoking = true;
  isReady = false;
  readonly speaksProofs = true;
  /** Pieces whose proof the parent sent on this link (once each). */
  private readonly proved = new Set<number>();
  private view: Bitfield | undefined;
  private open!: () => void;
  private fail!: (e: Error) => void;
  private readonly outbox: BlockRequest[] = [];
  private readonly pending = new Set<BlockRequest>();
  private sending: { req: BlockRequest; flow: Transfer } | undefined;
  /** The parent's side: it chokes this child (requests that reach it meanwhile are rejected). */
  private parentChoking = true;

  constructor(
    private readonly world: WireWorld,
    readonly digest: Digest,
    readonly childHost: HostId,
    readonly parent: UploadSide,
    private readonly observer?: LinkObserver,
  ) {
    super();
    this.ready = new Promise((resolve, reject) => {
      this.open = resolve;
      this.fail = reject;
    });
    this.ready.catch(() => {});
    this.toParent(() => this.parent.accept(this));
  }

  // The parent's side.

  /** The parent's bitfield, then an unchoke if it has a free slot (as the real uploader answers). */
  sendBitfield(pieces: Bitfield): void {
    const snapshot = Bitfield.fromBase64(pieces.length, pieces.toBase64());
    this.toChild(() => {
      this.view = snapshot;
      this.isReady = true;
      this.observer?.delivered({ kind: 'bitfield', pieces: [...snapshot.indexes()] });
      this.open();
      this.emit('bitfield');
    });
  }

  sendUnchoke(): void {
    this.parentChoking = false;
    this.toChild(() => {
      this.peerChoking = false;
      this.observer?.delivered({ kind: 'unchoke' });
      this.emit('unchoke');
    });
  }

  /** The parent takes the child's slot back: requests it had not started are rejected (the block on the way still comes and is answered). */
  sendChoke(): void {
    this.parentChoking = true;
    for (const req of this.outbox.splice(0)) this.sendReject(req);
    this.toChild(() => {
      this.peerChoking = true;
      this.emit('choke');
    });
  }

  /** The parent will not answer `req`: the child's request fails once the reject reaches it. */
  private sendReject(req: BlockRequest): void {
    this.toChild(() => this.settle(req, new PollenError('ERR_PEER_PROTOCOL', 'request was rejected')));
  }

  sendHave(index: number): void {
    this.toChild(() => {
      const fresh = this.view?.set(index) ?? true;
      this.observer?.delivered({ kind: 'have', index });
      // As bittorrent-protocol: a have of a piece the child already knows the parent holds is not passed on.
      if (fresh) this.emit('have', index);
    });
  }

  // The child's side (ParentConnection).

  peerHas(index: number): boolean {
    return this.isReady && (this.view?.has(index) ?? false);
  }

  request(index: number, offset: number, length: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.isClosed) return reject(new PollenError('ERR_PEER_PROTOCOL', 'wire connection closed'));
      this.observer?.requested(index, offset);
      const req: BlockRequest = { index, offset, length, resolve, reject, settled: false };
      this.pending.add(req);
      this.toParent(() => {
        if (this.parentChoking) return this.sendReject(req);
        this.outbox.push(req);
        this.sendNext(false);
      });
    });
  }

  cancel(index: number, offset: number): void {
    for (const req of this.pending) {
      if (req.index !== index || req.offset !== offset) continue;
      req.cancelled = true;
      this.settle(req, new PollenError('ERR_PEER_PROTOCOL', 'request was cancelled'));
      return;
    }
  }

  interested(wants = true): void {
    this.toParent(() => this.parent.interest(this, wants));
  }

  destroy(reason = 'closed'): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.sending) this.world.network.cancel(this.sending.flow);
    this.sending = undefined;
    this.outbox.length = 0;
    for (const req of [...this.pending]) this.settle(req, new PollenError('ERR_PEER_PROTOCOL', 'wire connection closed'));
    this.fail(new PollenError('ERR_PEER_PROTOCOL', `closed before ready: ${reason}`));
    this.toParentEvenClosed(() => this.parent.release(this));
    this.emit('close', reason);
  }

  /** The parent sends the next block asked for (one at a time: a stream). */
  private sendNext(continued: boolean): void {
    if (this.sending || this.isClosed) return;
    const r = this.outbox.shift();
    if (!r) return;
    if (!this.proved.has(r.index)) {
      this.proved.add(r.index);
      r.proof = this.parent.proof(this.digest, r.index);
    }
    const flow = this.world.network.transfer(this.parent.host, this.childHost, r.length + (r.proof ? PROOF_BYTES : 0), () => {
      this.sending = undefined;
      // Cancelled, or the child was choked meanwhile: it came for no request (the wire drops it).
      // The proof ahead of it came all the same, as the uploader's proof message does.
      if (r.settled) {
        if (r.proof) this.deliverProof(r.index, r.proof);
        this.emit('discarded', r.index, r.length, r.cancelled === true);
      } else this.settle(r, undefined);
      this.sendNext(true);
    }, continued);
    this.sending = { req: r, flow };
  }

  private settle(req: BlockRequest, err: Error | undefined): void {
    if (req.settled) return;
    req.settled = true;
    this.pending.delete(req);
    // A request has a proof once its block is on the way: the proof arrives with it (sendNext).
    if (err) return req.reject(err);
    if (req.proof) this.deliverProof(req.index, req.proof);
    this.observer?.delivered({ kind: 'block', index: req.index, offset: req.offset });
    req.resolve(this.world.body(req.length));
  }

  private deliverProof(index: number, proof: PieceProof): void {
    this.observer?.delivered({ kind: 'proof', index });
    this.emit('proof', proof);
  }

  private toParent(fn: () => void): void {
    this.world.queue.after(this.world.latency(this.childHost, this.parent.host), () => {
      if (!this.isClosed) fn();
    });
  }

  private toParentEvenClosed(fn: () => void): void {
    this.world.queue.after(this.world.latency(this.childHost, this.parent.host), fn);
  }

  private toChild(fn: () => void): void {
    this.world.queue.after(this.world.latency(this.parent.host, this.childHost), () => {
      if (!this.isClosed) fn();
    });
  }
}

/** The parent's end of a link, as the upload slots see it: closed once the child's close has reached the parent. */
export class ParentEnd implements SlotHolder {
  isClosed = false;

  constructor(readonly link: SimLink) {}

  /** The child's close reached the parent. */
  close(): void {
    this.isClosed = true;
  }

  get digest(): string {
    return this.link.digest;
  }

  unchoke(): void {
    this.link.sendUnchoke();
  }

  choke(): void {
    this.link.sendChoke();
  }
}
