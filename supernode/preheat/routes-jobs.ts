// The jobs API (Dragonfly-shaped; see src/preheat/jobs-api.ts) on the supernode's admin listener,
// behind the admin token, and the peers' preheat work poll on the cluster listener, behind each
// peer's own token (the work is the caller's: its id comes from the token, never from the request).
// Who may call each route is declared in its options (see ../http/route-auth.ts); errors are thrown
// and leave through ../http/error-handler.ts.
import type { FastifyInstance } from 'fastify';
import { PollenError } from '../../src/errors.ts';
import { JOBS_API, type WorkRequest } from '../../src/preheat/jobs-api.ts';
import { WORK_BODY } from '../http/schemas.ts';
import type { JobManager } from './job-manager.ts';

const REPORT_ERROR_CHARS = 500;

function jobId(raw: string): number {
  const id = Number(raw);
  if (!/^\d{1,12}$/.test(raw) || !Number.isSafeInteger(id)) throw new PollenError('ERR_INVALID_REQUEST', 'a job id is a positive integer');
  return id;
}

/** The admin listener's jobs API (the admin token) and Harbor's health probe. */
export function registerJobRoutes(app: FastifyInstance, deps: { jobs: JobManager }): void {
  const { jobs } = deps;

  // Harbor's Dragonfly provider checks this before it preheats.
  app.get('/healthy', { config: { auth: 'public' } }, async () => ({ status: 'ok' }));

  for (const base of [JOBS_API.jobs, JOBS_API.openJobs]) {
    app.post(base, { config: { auth: 'admin' } }, async (request) => jobs.create(request.body));

    app.get(base, { config: { auth: 'admin' } }, async () => jobs.list());

    app.get<{ Params: { id: string } }>(`${base}/:id`, { config: { auth: 'admin' } }, async (request) => {
      const job = jobs.get(jobId(request.params.id));
      if (!job) throw new PollenError('ERR_NOT_FOUND', `no job ${request.params.id}`);
      return job;
    });

    app.delete<{ Params: { id: string } }>(`${base}/:id`, { config: { auth: 'admin' } }, async (request, reply) => {
      const out = await jobs.cancel(jobId(request.params.id));
      if (!out) throw new PollenError('ERR_NOT_FOUND', `no job ${request.params.id}`);
      return out === 'deleted' ? reply.code(204).send() : out;
    });
  }
}

/** The cluster listener's preheat work route: reports in, assignments out, for the calling peer only. */
export function registerPreheatWorkRoute(app: FastifyInstance, deps: { jobs: Pick<JobManager, 'work'> }): void {
  app.post<{ Body: WorkRequest }>(JOBS_API.peerWork, { config: { auth: 'peer' }, schema: { body: WORK_BODY } }, async (request) => {
    const reports = (request.body.reports ?? []).map((r) => ({ ...r, error: r.error?.slice(0, REPORT_ERROR_CHARS) }));
    return deps.jobs.work(request.peerId!, reports);
  });
}
