// `POST /api/v1/gc`: runs a collection now and answers what it removed (`pollen gc` calls it). It
// belongs on a daemon's admin listener, never on the mirror's open surface; and since that listener
// may be opened to a network for Prometheus, only a caller on this host may run it.
import type { FastifyInstance } from 'fastify';
import type { Collector, CollectReport } from './collector.ts';

export const GC_ROUTE = '/api/v1/gc';

export function registerGcRoutes(app: FastifyInstance, collector: Pick<Collector, 'collect'>): void {
  app.post(GC_ROUTE, async (request, reply): Promise<CollectReport | undefined> => {
    if (!isLoopback(request.socket.remoteAddress)) {
      await reply.code(403).send({ errors: [{ code: 'DENIED', message: 'garbage collection may only be asked for from this host (loopback)' }] });
      return undefined;
    }
    return collector.collect();
  });
}

function isLoopback(address: string | undefined): boolean {
  const a = (address ?? '').toLowerCase();
  return a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
}
