// The jobs API (Dragonfly-shaped; see src/preheat/jobs-api.ts), behind the admin token, and the
// peers' preheat work poll, behind the cluster secret like the rest of the P2P API. Peers hold the
// cluster secret but not the admin token, so they cannot create jobs.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isDigestLike, type Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import { JOBS_API, type WorkReport } from '../../src/preheat/jobs-api.ts';
import type { JobManager } from './job-manager.ts';
import { sendError } from '../p2p/routes-p2p.ts';

const MAX_REPORTS = 1_000;

/** Whether a request path belongs to the admin jobs API (exempt from the cluster-secret check). */
export function isJobsPath(url: string): boolean {
  return /^\/(api|oapi)\/v1\/jobs(\/|\?|$)/.test(url);
}

function sameToken(given: string, want: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

function jobId(raw: string): number {
  const id = Number(raw);
  if (!/^\d{1,12}$/.test(raw) || !Number.isSafeInteger(id)) throw new PollenError('ERR_INVALID_REQUEST', 'a job id is a positive integer');
  return id;
}

export function registerJobRoutes(app: FastifyInstance, deps: { jobs: JobManager; adminToken: string | undefined }): void {
  const { jobs, adminToken } = deps;

  const guard = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    if (!adminToken) {
      return sendError(reply, new PollenError('ERR_ADMIN_UNAUTHORIZED', 'the jobs API is disabled: start the supernode with --admin-token (POLLEN_ADMIN_TOKEN)'));
    }
    const auth = request.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    if (!m || !sameToken(m[1]!, adminToken)) {
      return sendError(reply, new PollenError('ERR_ADMIN_UNAUTHORIZED', 'the jobs API needs the admin token: Authorization: Bearer TOKEN'));
    }
    return undefined;
  };

  // Harbor's Dragonfly provider checks this before it preheats.
  app.get('/healthy', async () => ({ status: 'ok' }));

  for (const base of [JOBS_API.jobs, JOBS_API.openJobs]) {
    app.post(base, { preHandler: guard }, async (request, reply) => {
      try {
        return reply.code(200).send(await jobs.create(request.body));
      } catch (err) {
        return sendError(reply, err);
      }
    });

    app.get(base, { preHandler: guard }, async () => jobs.list());

    app.get<{ Params: { id: string } }>(`${base}/:id`, { preHandler: guard }, async (request, reply) => {
      try {
        const job = jobs.get(jobId(request.params.id));
        if (!job) throw new PollenError('ERR_NOT_FOUND', `no job ${request.params.id}`);
        return job;
      } catch (err) {
        return sendError(reply, err);
      }
    });

    app.delete<{ Params: { id: string } }>(`${base}/:id`, { preHandler: guard }, async (request, reply) => {
      try {
        const out = await jobs.cancel(jobId(request.params.id));
        if (!out) throw new PollenError('ERR_NOT_FOUND', `no job ${request.params.id}`);
        return out === 'deleted' ? reply.code(204).send() : out;
      } catch (err) {
        return sendError(reply, err);
      }
    });
  }

  app.post<{ Params: { peerId: string } }>('/api/v1/peers/:peerId/preheat', async (request, reply) => {
    try {
      const peerId = request.params.peerId;
      if (peerId.length === 0 || peerId.length > 128) throw new PollenError('ERR_INVALID_REQUEST', 'bad peer id');
      const body = (request.body ?? {}) as { reports?: unknown };
      const raw = Array.isArray(body.reports) ? body.reports.slice(0, MAX_REPORTS) : [];
      const reports: WorkReport[] = [];
      for (const r of raw as Array<Partial<WorkReport> | null>) {
        if (!r || typeof r.job !== 'number' || typeof r.digest !== 'string' || !isDigestLike(r.digest) || typeof r.ok !== 'boolean') continue;
        reports.push({ job: r.job, digest: r.digest as Digest, ok: r.ok, error: typeof r.error === 'string' ? r.error.slice(0, 500) : undefined });
      }
      return jobs.work(peerId, reports);
    } catch (err) {
      return sendError(reply, err);
    }
  });
}
