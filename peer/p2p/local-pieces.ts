// What this peer can serve to others: blobs being downloaded (the pieces verified so far, read from
// their ingest, in the transfer's layout) and blobs committed in the content store (all pieces, in
// whichever layout the child names: metainfo.ts isLayout). The uploader asks here; the downloader
// registers its transfers and announces each verified piece.
import { EventEmitter } from 'node:events';
import type { ContentStore } from '../../src/content-store.ts';
import type { Digest } from '../../src/digest.ts';
import { Bitfield } from '../../src/p2p/bitfield.ts';
import { isLayout, pieceCountFor, pieceSizeFor } from '../../src/p2p/metainfo.ts';
import { ProofSet, type PieceProof } from '../../src/p2p/piece-proof.ts';
import type { Kv } from '../../src/db.ts';
import type { Holding } from '../../src/p2p/supernode-api.ts';
import { uploadBuffer } from '../../src/p2p/wire-blocks.ts';

export interface PieceSource {
  readonly size: number;
  readonly pieceSize: number;
  readonly pieceCount: number;
  has(index: number): boolean;
  bitfield(): Uint8Array;
  /** Reads bytes of the blob (only from verified pieces) into a buffer from `uploadBuffer`. */
  read(offset: number, length: number): Promise<Buffer>;
  /** The supernode's proof of a held piece's hash, when this peer has it (see piece-proof.ts). */
  proof(index: number): PieceProof | undefined;
  /** Every piece's hash (ProofSet.hashList), when this peer knows them all. */
  hashes(): Buffer | undefined;
}

export interface ActiveTransfer {
  readonly size: number;
  readonly pieceSize: number;
  readonly pieces: Bitfield;
  /** Fills `target` from `offset` of the blob (verified pieces only). */
  readInto(target: Buffer, offset: number): Promise<void>;
  /** Proofs of the pieces' hashes, as the transfer got them (from the seed or its parents). */
  readonly proofs?: ProofSet;
}

const MAX_HOLDINGS = 2_000;
/**
 * Proofs kept for committed blobs, in bytes (96 a piece: at most ~94 KiB a blob). Beyond, the
 * blobs committed longest ago lose theirs: their children then ask the supernode for those hashes.
 */
const MAX_COMMITTED_PROOF_BYTES = 16 << 20;

/** A committed blob's proofs as the peer's store keeps them (ProofSet.toBase64 and hashesAlone). */
export interface SavedProofs {
  readonly pieceCount: number;
  readonly proofs: string;
  readonly hashesAlone?: string;
}

export class LocalPieces extends EventEmitter<{ have: [digest: Digest, index: number] }> {
  private readonly store: ContentStore;
  private readonly active = new Map<Digest, ActiveTransfer>();
  private readonly committed = new Map<Digest, number>();
  /** Proofs of committed blobs, oldest first (see MAX_COMMITTED_PROOF_BYTES). */
  private readonly committedProofs = new Map<Digest, ProofSet>();
  private committedProofBytes = 0;

  /** Where committed blobs' proofs are kept across restarts (none: memory only). */
  private readonly saved: Kv<SavedProofs> | undefined;

  constructor(deps: { store: ContentStore; proofs?: Kv<SavedProofs> }) {
    super();
    this.store = deps.store;
    this.saved = deps.proofs;
  }

  /**
   * Learns the committed blobs, and their proofs as saved before a restart (up to the memory bound;
   * a saved set whose blob is gone is deleted): a restarted parent hands its children the proofs it
   * had, where it would have cost each child that asked it for a piece of unknown hash that piece.
   */
  async start(): Promise<void> {
    for await (const info of this.store.list()) this.committed.set(info.digest, info.size);
    if (!this.saved) return;
    for await (const [key, saved] of this.saved.entries()) {
      const digest = key as Digest;
      const proofs = this.committed.has(digest) && typeof saved === 'object' && saved !== null ? ProofSet.fromBase64(saved.pieceCount, saved.proofs, saved.hashesAlone) : undefined;
      if (!proofs) await this.saved.del(key).catch(() => {});
      else if (this.committedProofBytes + proofs.size <= MAX_COMMITTED_PROOF_BYTES) this.keepProofs(digest, proofs);
    }
  }

  /** Whether this peer serves `digest` in pieces of `pieceSize` (undefined: the size's default layout). */
  knows(digest: Digest, pieceSize?: number): boolean {
    const active = this.active.get(digest);
    if (active) return active.pieceSize === (pieceSize ?? pieceSizeFor(active.size));
    const size = this.committed.get(digest);
    return size !== undefined && isLayout(size, pieceSize ?? pieceSizeFor(size));
  }

  /** Blobs downloading now (the transfers that share the host's parent budget). */
  get activeTransfers(): number {
    return this.active.size;
  }

  addActive(digest: Digest, transfer: ActiveTransfer): void {
    this.active.set(digest, transfer);
  }

  removeActive(digest: Digest, transfer: ActiveTransfer): void {
    if (this.active.get(digest) === transfer) this.active.delete(digest);
  }

  markCommitted(digest: Digest, size: number, proofs?: ProofSet): void {
    this.committed.set(digest, size);
    this.dropProofs(digest);
    if (!proofs) return;
    // Best effort, as the bitfield record is: a proof not saved costs a child a piece after a restart.
    const hashesAlone = proofs.hashesAlone();
    void this.saved?.put(digest, { pieceCount: proofs.pieceCount, proofs: proofs.toBase64(), ...(hashesAlone === undefined ? {} : { hashesAlone }) }).catch(() => {});
    this.keepProofs(digest, proofs);
  }

  private keepProofs(digest: Digest, proofs: ProofSet): void {
    this.committedProofs.set(digest, proofs);
    this.committedProofBytes += proofs.size;
    for (const [d] of this.committedProofs) {
      if (this.committedProofBytes <= MAX_COMMITTED_PROOF_BYTES) break;
      this.dropProofs(d);
    }
  }

  /** The store no longer has the blob (evicted): nothing of it is offered any more. */
  forget(digest: Digest): boolean {
    this.dropProofs(digest);
    void this.saved?.del(digest).catch(() => {});
    return this.committed.delete(digest);
  }

  private dropProofs(digest: Digest): void {
    const proofs = this.committedProofs.get(digest);
    if (!proofs) return;
    this.committedProofs.delete(digest);
    this.committedProofBytes -= proofs.size;
  }

  /** Tells listeners (the uploader's connections) about a verified piece; never throws into the caller. */
  announce(digest: Digest, index: number): void {
    try {
      this.emit('have', digest, index);
    } catch {
      // a listener's failure must not fail the download
    }
  }

  /** The blob in pieces of `pieceSize` (undefined: the size's default layout), if this peer serves it so. */
  source(digest: Digest, pieceSize?: number): PieceSource | undefined {
    if (!this.knows(digest, pieceSize)) return undefined;
    const active = this.active.get(digest);
    if (active) {
      return {
        size: active.size,
        pieceSize: active.pieceSize,
        pieceCount: active.pieces.length,
        has: (i) => active.pieces.has(i),
        bitfield: () => active.pieces.bytes,
        read: async (offset, length) => {
          try {
            const target = uploadBuffer(length);
            await active.readInto(target, offset);
            return target;
          } catch {
            // The transfer may have just committed: read the committed blob.
            return this.readCommitted(digest, offset, length);
          }
        },
        proof: (i) => (active.pieces.has(i) ? active.proofs?.get(i) : undefined) ?? this.proofsIn(digest, active.pieces.length)?.get(i),
        hashes: () => active.proofs?.hashList() ?? this.proofsIn(digest, active.pieces.length)?.hashList(),
      };
    }
    const size = this.committed.get(digest)!;
    const layout = pieceSize ?? pieceSizeFor(size);
    const pieceCount = pieceCountFor(size, layout);
    const all = Bitfield.full(pieceCount);
    const proofs = this.proofsIn(digest, pieceCount);
    return { size, pieceSize: layout, pieceCount, has: (i) => all.has(i), bitfield: () => all.bytes, read: (o, l) => this.readCommitted(digest, o, l), proof: (i) => proofs?.get(i), hashes: () => proofs?.hashList() };
  }

  /** A committed blob's proofs if they are of the layout of `pieceCount` pieces (two layouts of a blob never have the same count). */
  private proofsIn(digest: Digest, pieceCount: number): ProofSet | undefined {
    const kept = this.committedProofs.get(digest);
    return kept?.pieceCount === pieceCount ? kept : undefined;
  }

  /** What to report when (re-)registering with a supernode. */
  holdings(): Holding[] {
    const out: Holding[] = [];
    for (const [digest, t] of this.active) out.push({ digest, pieces: t.pieces.toBase64(), pieceSize: t.pieceSize });
    for (const [digest, size] of this.committed) {
      if (out.length >= MAX_HOLDINGS) break;
      if (!this.active.has(digest)) out.push({ digest, pieces: Bitfield.full(pieceCountFor(size, pieceSizeFor(size))).toBase64() });
    }
    return out;
  }

  private async readCommitted(digest: Digest, offset: number, length: number): Promise<Buffer> {
    const target = uploadBuffer(length);
    await this.store.readInto(digest, target, offset);
    return target;
  }

}
