// The seed's leases of one task: which peers may fetch which piece from the supernode's seed, and
// until when. A piece no trusted peer holds is leased to one peer at a time, so the seed sends it
// about once (grantUnheld); peers starved of pieces may share a lease (grantStarved). A lease lives
// while its peer renews it, at every sync, and lacks the piece; it goes when the peer has the
// piece, declines it (a live parent has the piece in flight), leaves the task, or stops renewing it.
import type { Bitfield } from '../../src/p2p/bitfield.ts';

/** Pieces the seed has not got yet are granted at most this many ahead of it. */
const SEED_LOOKAHEAD_PIECES = 2;
/**
 * Seed leases a starved asker holds at once. One piece ends a starvation (the asker is starved
 * while no piece came for a while); with its whole allowance (3) each starvation took three, and
 * those starved grants were all of the supernode host's egress past 1 x S on the 256 MiB, 16-host
 * bed (512 unheld grants, 281 starved: 1.56 x S; with one, 121-168 and 1.29-1.38 x S).
 */
export const STARVED_SEED_LEASES = 1;

/** New leases handed out by kind (renewals not counted); the supernode's metrics read them. */
export interface SeedGrantCounts {
  unheld: number;
  starved: number;
}

/** One asker's request for seed pieces. */
export interface LeaseRequest {
  readonly asker: string;
  /** The pieces the asker holds (undefined: none known). */
  readonly mine: Bitfield | undefined;
  /** Leases the asker may hold at once, renewed ones included. */
  readonly want: number;
  readonly now: number;
  readonly leaseMs: number;
  /** Whether the seed has piece `i` already (it fetches the blob from the registry in order). */
  readonly seedHas: (i: number) => boolean;
  /** Pieces whose grants the asker declined since its last sync: not granted to it again in this answer. */
  readonly declined?: ReadonlySet<number> | undefined;
}

export class SeedLeases {
  /** Piece -> the peers it is leased to -> until when. */
  private readonly byPiece = new Map<number, Map<string, number>>();
  /** Leases whose piece the seed sent whole already (`${piece} ${peer}`): each pays for one call of its peer, once (creditSent). */
  private readonly credited = new Set<string>();

  constructor(
    private readonly pieceCount: number,
    /** The task's holders per piece (the scheduler's array, kept up to date by it). */
    private readonly availability: Uint32Array,
    /** The scheduler's counters, shared by all its tasks' leases (incremented here). */
    private readonly counts: SeedGrantCounts,
  ) {}

  /** The peer has piece `i`: its lease on it goes (other peers' stay theirs). */
  got(i: number, peerId: string): void {
    const lease = this.byPiece.get(i);
    if (lease?.delete(peerId) && lease.size === 0) this.byPiece.delete(i);
    this.credited.delete(`${i} ${peerId}`);
  }

  /**
   * The seed sent piece `i` whole to `peerId`: true once per lease the peer holds on it (the sync
   * that reports the piece and leases the next is paid by it: ../http/peer-request-budget.ts), false
   * for a piece it holds no lease on or was sent whole before under the same lease.
   */
  creditSent(i: number, peerId: string, now: number): boolean {
    if (!((this.byPiece.get(i)?.get(peerId) ?? 0) > now)) return false;
    const key = `${i} ${peerId}`;
    if (this.credited.has(key)) return false;
    this.credited.add(key);
    return true;
  }

  /**
   * The asker declined its grants of these pieces (a live parent has them in flight): its leases on
   * them go, so the next grant can be another piece. Renewed at every sync, a declined lease held a
   * starved peer's one seed lease until the slow parent's copy came (up to 3 x pieceStallMs).
   */
  decline(pieces: Iterable<number>, peerId: string): void {
    for (const i of pieces) this.got(i, peerId);
  }

  /** The peer left the task: its leases go. */
  forgetPeer(peerId: string): void {
    for (const [i, lease] of this.byPiece) {
      if (lease.delete(peerId) && lease.size === 0) this.byPiece.delete(i);
      this.credited.delete(`${i} ${peerId}`);
    }
  }

  /**
   * Pieces the asker may fetch from the seed: the leases it holds (renewed) plus new ones up to
   * `want` (at most maxSeedGrants, which keeps one quick asker from taking every lease), on pieces
   * nobody holds but distrusted peers (`distrustedHolders`) and nobody leases; `anyUnheld` false
   * (every piece has a trusted holder) skips the search. No super-seeding:
   * holding back a peer whose pieces nobody else has yet left the seed's link idle while a few
   * peers traded, and that link is what bounds a small fan-out. Simulated 256 MiB, free CPU: N = 2
   * 55.3 -> 22.8 s, 4: 27.5 -> 22.8 s, 8: 25.2 -> 22.9 s; 32 MiB at N = 10 and 64 MiB at N = 100 to
   * 1,000 within 1 %. Bed (fan-out, 256 MiB): N = 2 31.3 -> 26.4 s, N = 4 26.9 / 26.9 -> 25.6 / 26.4 s.
   */
  grantUnheld(req: LeaseRequest, distrustedHolders: (i: number) => number, anyUnheld = true): number[] {
    const grants = this.renew(req);
    // Every piece held by a trusted peer (the scheduler counts the unheld ones): nothing to scan for.
    // Most syncs of a fan-out past its first pieces; the scan over every piece was its largest cost.
    if (!anyUnheld) return grants;
    // Pieces the seed has not got yet are granted only a few ahead of it: a peer holding a grant far
    // ahead would wait on the registry while others could have served it what the seed already has.
    let ahead = 0;
    for (let i = 0; i < this.pieceCount && grants.length < req.want; i++) {
      const ready = req.seedHas(i);
      if (!ready && ahead++ >= SEED_LOOKAHEAD_PIECES) break;
      if (req.mine?.has(i) || this.byPiece.has(i) || req.declined?.has(i)) continue;
      if (this.availability[i]! > distrustedHolders(i)) continue;
      this.byPiece.set(i, new Map([[req.asker, req.now + req.leaseMs]]));
      grants.push(i);
      this.counts.unheld++;
    }
    return grants;
  }

  /**
   * Seed pieces for a starved asker: any piece the seed has and the asker lacks, held by peers or
   * leased to other peers or not, rarest first (a lease counts as a holder to come), up to `want`
   * (STARVED_SEED_LEASES). Peers hold them but are not delivering them to this asker; the seed
   * sends such a piece at most once per starved peer. A piece leased to another peer is shared, not
   * withheld: when the last pieces of a layer are scarce, every peer lacking them starves at once,
   * and one lease per piece served them one at a time, for as long as each lease holder kept
   * renewing it (also while it declined the grant because a slow parent had the piece in flight):
   * the 256 MiB, 16-host bed's registry fallbacks, each after 30 s without a byte, with only such
   * pieces missing.
   */
  grantStarved(req: LeaseRequest): number[] {
    const grants = this.renew(req);
    if (grants.length >= req.want) return grants;
    const candidates: Array<{ i: number; rank: number }> = [];
    for (let i = 0; i < this.pieceCount; i++) {
      const lease = this.byPiece.get(i);
      if (!req.mine?.has(i) && !lease?.has(req.asker) && !req.declined?.has(i) && req.seedHas(i)) candidates.push({ i, rank: this.availability[i]! + (lease?.size ?? 0) });
    }
    candidates.sort((a, b) => a.rank - b.rank || a.i - b.i);
    for (const { i } of candidates) {
      if (grants.length >= req.want) break;
      const lease = this.byPiece.get(i);
      if (lease) lease.set(req.asker, req.now + req.leaseMs);
      else this.byPiece.set(i, new Map([[req.asker, req.now + req.leaseMs]]));
      grants.push(i);
      this.counts.starved++;
    }
    return grants;
  }

  /** Leases of the asker that are still running, renewed; expired leases of anyone are dropped. */
  private renew(req: LeaseRequest): number[] {
    const grants: number[] = [];
    for (const [i, lease] of this.byPiece) {
      for (const [peerId, until] of lease) {
        if (until <= req.now) {
          lease.delete(peerId);
          this.credited.delete(`${i} ${peerId}`);
        } else if (peerId === req.asker && !req.mine?.has(i)) {
          lease.set(peerId, req.now + req.leaseMs);
          grants.push(i);
        }
      }
      if (lease.size === 0) this.byPiece.delete(i);
    }
    return grants;
  }
}
