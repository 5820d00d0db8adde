// The preheat jobs API of the supernode (shared by the supernode's routes, the CLI and the peer's
// preheat worker). Shapes follow Dragonfly 2's manager jobs API (`POST /api/v1/jobs` with
// `{"type":"preheat","args":{...}}`, integer ids, `state` PENDING/SUCCESS/FAILURE and
// `result.job_states`) so Harbor's Dragonfly preheat provider can drive Pollen; Pollen's own detail
// (`phase`, `reason`, `progress`, `layers`, `peers`) is added alongside. docs/preheat.md lists every
// difference.
import type { Digest } from '../digest.ts';

export const JOBS_API = {
  jobs: '/api/v1/jobs',
  job: (id: number) => `/api/v1/jobs/${id}`,
  /** Harbor's Dragonfly provider calls the open API paths: same handlers. */
  openJobs: '/oapi/v1/jobs',
  /** The calling peer's preheat work, on the cluster listener: reports in, assignments out (the peer's own token). */
  peerWork: '/api/v1/peers/self/preheat',
} as const;

export type PreheatScope = 'single_seed_peer' | 'all_peers';
export const PREHEAT_SCOPES: readonly PreheatScope[] = ['single_seed_peer', 'all_peers'];

/** The `args` of a preheat job as a client sends them (snake_case as in Dragonfly). */
export interface PreheatArgsBody {
  /** Dragonfly: "image" (the only type Pollen preheats). */
  readonly type?: string;
  /** A manifest URL: `https://registry/v2/<name>/manifests/<tag or digest>` (Dragonfly, Harbor). */
  readonly url?: string;
  /** Pollen: an image reference `host[:port]/name[:tag][@digest]` instead of `url`. */
  readonly image?: string;
  /** `os/arch[/variant]` chosen from an index; default linux/amd64. */
  readonly platform?: string;
  readonly scope?: PreheatScope;
  /** Pollen: peer ids to preheat (all_peers). */
  readonly peers?: readonly string[];
  /** Dragonfly: peer IPs (matched against the host of each peer's wire address). */
  readonly ips?: readonly string[];
  readonly count?: number;
  readonly percentage?: number;
  /** Headers for the registry, e.g. {"Authorization": "Bearer ..."} (Harbor sends these). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly username?: string;
  readonly password?: string;
  readonly concurrent_task_count?: number;
  readonly concurrent_peer_count?: number;
  /** Dragonfly: a Go time.Duration in nanoseconds. */
  readonly timeout?: number;
  /** Pollen: the timeout in milliseconds (wins over `timeout`). */
  readonly timeout_ms?: number;
}

export interface CreateJobBody {
  readonly type: 'preheat';
  readonly args: PreheatArgsBody;
  /** Dragonfly's cluster selection: accepted and ignored (one Pollen cluster). */
  readonly scheduler_cluster_ids?: readonly number[];
}

/** Pollen's job phases; `state` keeps Dragonfly's names (PENDING covers pending and running). */
export type JobPhase = 'pending' | 'running' | 'succeeded' | 'failed';
export type DragonflyState = 'PENDING' | 'SUCCESS' | 'FAILURE';

export interface LayerProgressBody {
  readonly digest: Digest;
  readonly media_type: string;
  readonly size: number | null;
  /** The seed's copy: waiting, fetching, done, failed. */
  readonly seed: string;
  readonly peers_done: number;
  readonly peers_failed: number;
}

export interface PeerProgressBody {
  readonly id: string;
  readonly addr: string;
  readonly layers_done: number;
  readonly layers_failed: number;
}

export interface DragonflyTaskBody {
  readonly url: string;
  readonly hostname: string;
  readonly ip: string;
  readonly description?: string;
}

export interface JobBody {
  readonly id: number;
  readonly task_id: string;
  readonly type: 'preheat';
  readonly created_at: string;
  readonly updated_at: string;
  readonly state: DragonflyState;
  /** Echo of the args, with the password and header values blanked. */
  readonly args: Record<string, unknown>;
  readonly result: {
    readonly job_states: ReadonlyArray<{
      readonly error: string;
      readonly results: ReadonlyArray<{ readonly success_tasks: DragonflyTaskBody[]; readonly failure_tasks: DragonflyTaskBody[]; readonly scheduler_cluster_id: number }>;
    }>;
  };
  readonly phase: JobPhase;
  readonly reason?: string;
  readonly code?: string;
  readonly scope: PreheatScope;
  /** Times the job was picked up again after a supernode restart. */
  readonly resumed: number;
  readonly progress: {
    readonly layers: { readonly total: number; readonly done: number; readonly failed: number };
    readonly peers: { readonly total: number; readonly done: number; readonly failed: number };
    readonly tasks: { readonly total: number; readonly done: number; readonly failed: number };
  };
  readonly layers: readonly LayerProgressBody[];
  readonly peers: readonly PeerProgressBody[];
}

/** What a peer tells the supernode about its preheat assignments. */
export interface WorkReport {
  readonly job: number;
  readonly digest: Digest;
  readonly ok: boolean;
  readonly error?: string;
}

export interface WorkRequest {
  readonly reports: readonly WorkReport[];
}

/**
 * One blob a peer must have: it downloads it through its P2P downloader, from other peers and the
 * seed. The registry and name are identifiers only (the registry by host key, as in a task request):
 * a job's registry credentials stay in the supernode, whose seed fetches with them and admits the
 * peer for the blob on the job's authority.
 */
export interface WorkItem {
  readonly job: number;
  readonly digest: Digest;
  readonly size: number | null;
  readonly upstream: { readonly registry: string; readonly name: string };
}

export interface WorkResponse {
  readonly work: readonly WorkItem[];
  /** Milliseconds until the peer should ask again. */
  readonly pollMs: number;
}
