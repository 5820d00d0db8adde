// The supernode's observability routes on its admin listener (plain HTTP, loopback by default):
// health and readiness, Prometheus /metrics, the status page (`/`), its event stream (`/events`)
// and the same snapshot as JSON. All public on that listener: they show ids, addresses, digests
// and counts, never content bytes or credentials; opening --admin-listen to a network opens them.
import type { FastifyInstance } from 'fastify';
import { registerHealthRoutes, type ReadinessProbe } from '../../src/health.ts';
import type { Metrics } from '../../src/metrics.ts';
import type { StatusEvents } from './status-events.ts';
import type { StatusModel } from './status-model.ts';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page.ts';

export interface StatusRouteDeps {
  readonly readiness: ReadinessProbe;
  readonly metrics: Metrics;
  readonly model: StatusModel;
  readonly events: StatusEvents;
}

export function registerStatusRoutes(app: FastifyInstance, deps: StatusRouteDeps): void {
  const pub = { auth: 'public' as const };
  registerHealthRoutes(app, deps.readiness, pub);
  app.get('/metrics', { config: pub }, async (_req, reply) => reply.type(deps.metrics.contentType).send(await deps.metrics.text()));
  app.get('/', { config: pub }, async (_req, reply) =>
    reply.headers({ 'content-type': 'text/html; charset=utf-8', 'content-security-policy': STATUS_PAGE_CSP, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).send(STATUS_PAGE_HTML),
  );
  app.get('/api/v1/status', { config: pub }, async () => deps.model.snapshot());
  app.get('/events', { config: pub }, async (_req, reply) => {
    return deps.events.open(reply);
  });
  // Before the server waits for connections to end: an event stream never ends by itself.
  app.addHook('preClose', async () => deps.events.close());
}
