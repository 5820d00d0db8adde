// `POST /api/v1/gc`: runs a collection now and answers what it removed (`pollen gc` calls it). It
// belongs on a daemon's admin listener (loopback), never on the mirror's open surface.
import type { FastifyInstance } from 'fastify';
import type { Collector, CollectReport } from './collector.ts';

export const GC_ROUTE = '/api/v1/gc';

export function registerGcRoutes(app: FastifyInstance, collector: Pick<Collector, 'collect'>): void {
  app.post(GC_ROUTE, async (): Promise<CollectReport> => collector.collect());
}
