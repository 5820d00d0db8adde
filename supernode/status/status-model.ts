// What the status page shows, as one JSON snapshot: the peers (id, wire address, and what their
// heartbeats report: version, store use, upload and download rates; without reports, the download
// rate from the pieces their syncs report), the tasks (size, holders, a pieces-by-peers grid, bytes by source)
// and the preheat jobs. Bounded whatever the cluster's size: at most MAX_PEERS peers and
// MAX_TASKS tasks, MAX_GRID_ROWS peers per grid, each row at most GRID_COLUMNS cells. It carries
// ids, addresses, digests and counts: never content bytes, tokens or registry credentials.
import type { Digest } from '../../src/digest.ts';
import type { Bitfield } from '../../src/p2p/bitfield.ts';
import { redactUrl } from '../../src/oci/redact-url.ts';
import type { JobBody } from '../../src/preheat/jobs-api.ts';
import type { SeedCounters, SeedTask } from '../p2p/seed.ts';
import type { PeerRecord } from '../p2p/tracker.ts';

export const MAX_PEERS = 200;
export const MAX_TASKS = 50;
export const MAX_GRID_ROWS = 40;
export const GRID_COLUMNS = 64;
const MAX_JOBS = 20;
/** Rates are measured over this much recent history (heartbeats and snapshots come each second). */
export const RATE_WINDOW_MS = 5_000;

interface RateSample {
  readonly t: number;
  /** From the peer's heartbeat report (its own byte totals), or the supernode's estimate from held pieces. */
  readonly reported: boolean;
  readonly up: number | undefined;
  readonly down: number;
}

export interface StatusSources {
  peers(): readonly PeerRecord[];
  tasks(): Iterable<{ readonly digest: Digest; readonly pieceCount: number; readonly holders: ReadonlyMap<string, Bitfield> }>;
  seedTask(digest: Digest): SeedTask | undefined;
  seedCounters(): Readonly<SeedCounters>;
  jobs(): readonly JobBody[];
}

export interface PeerView {
  readonly id: string;
  readonly address: string;
  /** Null when the peer does not report it (an older peer). */
  readonly version: string | null;
  readonly storeBytes: number | null;
  readonly storeQuotaBytes: number | null;
  /** Bytes per second the peer downloaded (reported, else from the pieces its syncs reported). */
  readonly downBps: number;
  /** Bytes per second the peer uploaded to other peers (null when it does not report it). */
  readonly upBps: number | null;
  readonly tasks: number;
  readonly uploadSlots: number;
}

export interface TaskView {
  readonly digest: Digest;
  readonly size: number;
  readonly pieceCount: number;
  readonly holders: number;
  readonly complete: number;
  readonly seed: 'fetching' | 'complete' | 'failed' | 'unknown';
  /** Bytes by source: what the seed sent peers of this task, and what peers hold beyond that. */
  readonly bytes: { readonly seed: number; readonly peers: number };
  /** One row per peer (the first MAX_GRID_ROWS): cells 0-9, the share of a piece range held. */
  readonly grid: ReadonlyArray<{ readonly peer: string; readonly cells: string; readonly held: number }>;
}

export interface StatusSnapshot {
  readonly at: number;
  readonly totals: { readonly peers: number; readonly tasks: number; readonly seedRegistryBytes: number; readonly seedServedBytes: number };
  readonly peers: readonly PeerView[];
  readonly tasks: readonly TaskView[];
  readonly jobs: ReadonlyArray<{ readonly id: number; readonly state: string; readonly phase: string; readonly target: string | null; readonly progress: JobBody['progress']; readonly reason?: string }>;
}

export class StatusModel {
  private readonly sources: StatusSources;
  private readonly now: () => number;
  /** Seed bytes sent per task (counted at the cluster API), pruned to the tasks that exist. */
  private readonly seedSent = new Map<string, number>();
  /** Recent byte totals per live peer, for the rates (pruned to the peers that exist). */
  private samples = new Map<string, RateSample[]>();

  constructor(deps: { sources: StatusSources; now?: () => number }) {
    this.sources = deps.sources;
    this.now = deps.now ?? Date.now;
  }

  onSeedPiece(digest: string, bytes: number): void {
    if (this.seedSent.size >= MAX_TASKS * 20 && !this.seedSent.has(digest)) return;
    this.seedSent.set(digest, (this.seedSent.get(digest) ?? 0) + bytes);
  }

  snapshot(): StatusSnapshot {
    const at = this.now();
    const heldBytes = new Map<string, number>();
    const tasks: TaskView[] = [];
    const live = new Set<string>();
    let taskCount = 0;
    for (const t of this.sources.tasks()) {
      taskCount++;
      // Only the tasks shown are scanned: the snapshot's cost stays bounded however many tasks run.
      if (tasks.length >= MAX_TASKS) continue;
      live.add(t.digest);
      const seedTask = this.sources.seedTask(t.digest);
      const size = seedTask?.meta.size ?? 0;
      const pieceSize = seedTask?.meta.pieceSize ?? 0;
      let complete = 0;
      let heldTotal = 0;
      const grid: { peer: string; cells: string; held: number }[] = [];
      for (const [peer, bits] of t.holders) {
        const bytes = Math.min(size, bits.count * pieceSize);
        heldBytes.set(peer, (heldBytes.get(peer) ?? 0) + bytes);
        heldTotal += bytes;
        if (bits.complete) complete++;
        if (grid.length < MAX_GRID_ROWS) grid.push({ peer, cells: gridRow(bits, t.pieceCount), held: bits.count });
      }
      const seed = this.seedSent.get(t.digest) ?? 0;
      tasks.push({
        digest: t.digest, size, pieceCount: t.pieceCount, holders: t.holders.size, complete,
        seed: seedTask ? seedTask.state.name : 'unknown',
        bytes: { seed, peers: Math.max(0, heldTotal - seed) },
        grid,
      });
    }
    if (taskCount <= MAX_TASKS) for (const d of this.seedSent.keys()) if (!live.has(d)) this.seedSent.delete(d);

    const peers = this.sources.peers();
    const samples = new Map<string, RateSample[]>();
    const views: PeerView[] = peers.slice(0, MAX_PEERS).map((p) => {
      const r = p.report;
      const reported = r?.downloadedBytes !== undefined;
      const sample: RateSample = { t: reported ? p.lastSeen : at, reported, up: r?.uploadedBytes, down: reported ? r.downloadedBytes! : (heldBytes.get(p.peerId) ?? 0) };
      // A rate compares like with like: estimates taken before the peer's first report (no upload
      // total) would stay first in the window for RATE_WINDOW_MS and show 0 while it uploads.
      const history = (this.samples.get(p.peerId) ?? []).filter((s) => s.t >= at - RATE_WINDOW_MS && s.t !== sample.t && s.reported === reported);
      history.push(sample);
      samples.set(p.peerId, history);
      const first = history[0]!;
      const dt = (sample.t - first.t) / 1000;
      const rate = (a: number | undefined, b: number | undefined): number => (dt > 0 && a !== undefined && b !== undefined ? Math.max(0, Math.round((b - a) / dt)) : 0);
      return {
        id: p.peerId, address: p.wireAddr, version: r?.version ?? null, storeBytes: r?.storeBytes ?? null, storeQuotaBytes: r?.storeQuotaBytes ?? null,
        downBps: rate(first.down, sample.down), upBps: r?.uploadedBytes === undefined ? null : rate(first.up, sample.up), tasks: p.tasks.size, uploadSlots: p.uploadSlots,
      };
    });
    this.samples = samples;

    const seed = this.sources.seedCounters();
    const jobs = this.sources.jobs().slice(0, MAX_JOBS).map((j) => ({
      id: j.id, state: j.state, phase: j.phase, target: targetOf(j), progress: j.progress, ...(j.reason ? { reason: j.reason } : {}),
    }));
    return { at, totals: { peers: peers.length, tasks: taskCount, seedRegistryBytes: seed.registryBytes, seedServedBytes: seed.servedBytes }, peers: views, tasks, jobs };
  }
}

/** A bitfield in at most GRID_COLUMNS cells, each the share (0-9) of its pieces held. */
export function gridRow(bits: Bitfield, pieceCount: number): string {
  const columns = Math.min(GRID_COLUMNS, pieceCount);
  let row = '';
  for (let c = 0; c < columns; c++) {
    const from = Math.floor((c * pieceCount) / columns);
    const to = Math.floor(((c + 1) * pieceCount) / columns);
    let have = 0;
    for (let i = from; i < to; i++) if (bits.has(i)) have++;
    row += String(Math.round((9 * have) / Math.max(1, to - from)));
  }
  return row;
}

/** The image a job preheats, as its URL without userinfo or query (never a credential on the page). */
function targetOf(job: JobBody): string | null {
  const url = (job.args as { url?: unknown }).url;
  return typeof url === 'string' ? redactUrl(url).slice(0, 300) : null;
}
