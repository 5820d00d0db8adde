// A preheat job's persisted record and its views: the JSON a client sees (Dragonfly-shaped plus
// Pollen's progress) and the failure summary. The record is plain data stored in level as is.
import type { Digest } from '../../src/digest.ts';
import type { DragonflyTaskBody, JobBody, JobPhase } from '../../src/preheat/jobs-api.ts';
import { isSettled, type JobState, type TaskState } from './job-state.ts';
import type { PreheatSpec } from './preheat-args.ts';

export interface LayerRecord {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
  seed: TaskState;
}

export interface JobRecord {
  readonly id: number;
  readonly createdAt: number;
  updatedAt: number;
  readonly spec: PreheatSpec;
  /** The args as echoed back (no secrets). */
  readonly echo: Record<string, unknown>;
  /** Whether the job came with credentials (which are never stored: such a job cannot resume). */
  readonly hasSecrets: boolean;
  state: JobState;
  resumed: number;
  manifest?: Digest;
  /** Empty until the image is resolved. */
  layers: LayerRecord[];
  /** Selected peers (all_peers), fixed when the image is resolved. */
  peers: Array<{ id: string; addr: string }>;
  /** When the peers were chosen (all_peers); undefined until then. */
  selectedAt?: number;
  /** tasks[digest][peerId]: that peer holding that blob. */
  tasks: Record<string, Record<string, TaskState>>;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function hostOf(addr: string): string {
  const m = /^\[?([^\]]*?)\]?:\d+$/.exec(addr);
  return m ? m[1]! : addr;
}

export function peerTaskStates(job: JobRecord): Array<{ digest: Digest; peerId: string; state: TaskState }> {
  const out: Array<{ digest: Digest; peerId: string; state: TaskState }> = [];
  for (const l of job.layers) for (const [peerId, state] of Object.entries(job.tasks[l.digest] ?? {})) out.push({ digest: l.digest, peerId, state });
  return out;
}

export function jobBody(job: JobRecord): JobBody {
  const s = job.state;
  const phase: JobPhase = s.name;
  const blobUrl = (d: Digest) => `${job.spec.target.baseUrl}/v2/${job.spec.target.name}/blobs/${d}`;
  const tasks = peerTaskStates(job);
  const success: DragonflyTaskBody[] = [];
  const failure: DragonflyTaskBody[] = [];
  const addr = new Map(job.peers.map((p) => [p.id, p.addr]));
  if (job.spec.scope === 'single_seed_peer') {
    for (const l of job.layers) {
      if (l.seed.name === 'done') success.push({ url: blobUrl(l.digest), hostname: 'seed', ip: '' });
      if (l.seed.name === 'failed') failure.push({ url: blobUrl(l.digest), hostname: 'seed', ip: '', description: l.seed.reason });
    }
  }
  for (const t of tasks) {
    const base = { url: blobUrl(t.digest), hostname: t.peerId, ip: hostOf(addr.get(t.peerId) ?? '') };
    if (t.state.name === 'done') success.push(base);
    if (t.state.name === 'failed') failure.push({ ...base, description: t.state.reason });
  }
  const layerDone = (l: LayerRecord): boolean =>
    l.seed.name === 'done' && (job.spec.scope === 'single_seed_peer' || Object.values(job.tasks[l.digest] ?? {}).every((t) => t.name === 'done'));
  const layerFailed = (l: LayerRecord): boolean => l.seed.name === 'failed' || Object.values(job.tasks[l.digest] ?? {}).some((t) => t.name === 'failed');
  const peers = job.peers.map((p) => {
    const mine = job.layers.map((l) => job.tasks[l.digest]?.[p.id]).filter((t): t is TaskState => t !== undefined);
    return { id: p.id, addr: p.addr, layers_done: mine.filter((t) => t.name === 'done').length, layers_failed: mine.filter((t) => t.name === 'failed').length };
  });
  return {
    id: job.id,
    task_id: `pollen_preheat_${job.id}`,
    type: 'preheat',
    created_at: iso(job.createdAt),
    updated_at: iso(job.updatedAt),
    state: s.name === 'succeeded' ? 'SUCCESS' : s.name === 'failed' ? 'FAILURE' : 'PENDING',
    args: job.echo,
    result: {
      job_states: [
        {
          error: s.name === 'failed' ? s.reason : '',
          results: [{ success_tasks: success, failure_tasks: failure, scheduler_cluster_id: 0 }],
        },
      ],
    },
    phase,
    ...(s.name === 'failed' ? { reason: s.reason, code: s.code } : {}),
    scope: job.spec.scope,
    resumed: job.resumed,
    progress: {
      layers: { total: job.layers.length, done: job.layers.filter(layerDone).length, failed: job.layers.filter(layerFailed).length },
      peers: {
        total: job.peers.length,
        done: peers.filter((p) => job.layers.length > 0 && p.layers_done === job.layers.length).length,
        failed: peers.filter((p) => p.layers_failed > 0).length,
      },
      tasks: { total: tasks.length, done: tasks.filter((t) => t.state.name === 'done').length, failed: tasks.filter((t) => t.state.name === 'failed').length },
    },
    layers: job.layers.map((l) => {
      const ts = Object.values(job.tasks[l.digest] ?? {});
      return { digest: l.digest, media_type: l.mediaType, size: l.size, seed: l.seed.name === 'active' ? 'fetching' : l.seed.name, peers_done: ts.filter((t) => t.name === 'done').length, peers_failed: ts.filter((t) => t.name === 'failed').length };
    }),
    peers,
  };
}

/** Whether every part of the job is settled (done or failed). */
export function allSettled(job: JobRecord): boolean {
  return job.layers.every((l) => isSettled(l.seed)) && peerTaskStates(job).every((t) => isSettled(t.state));
}

/** A one-line reason naming the first failures. */
export function failureSummary(job: JobRecord): string | undefined {
  const failed = peerTaskStates(job).filter((t) => t.state.name === 'failed');
  const seeds = job.layers.filter((l) => l.seed.name === 'failed');
  if (failed.length === 0 && seeds.length === 0) return undefined;
  const first = [
    ...seeds.map((l) => `seed ${l.digest.slice(0, 19)}: ${(l.seed as { reason: string }).reason}`),
    ...failed.map((t) => `peer ${t.peerId.slice(0, 12)} ${t.digest.slice(0, 19)}: ${(t.state as { reason: string }).reason}`),
  ].slice(0, 3);
  const total = peerTaskStates(job).length;
  return `${failed.length + seeds.length} of ${total + job.layers.length} blob copies failed (${first.join('; ')})`;
}
