// POST /api/v1/gc runs a collection only for a caller on this host: the listener it sits on (the
// peer's metrics listener) may be opened to a network for Prometheus.
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import type { CollectReport } from '../../../../src/store/collector.ts';
import { GC_ROUTE, registerGcRoutes } from '../../../../src/store/gc-routes.ts';

describe('the gc route', () => {
  it('collects for a loopback caller and refuses anyone else with 403 and an OCI error body', async () => {
    let runs = 0;
    const app = Fastify();
    registerGcRoutes(app, { collect: async () => (runs++, { removed: [] } as unknown as CollectReport) });
    try {
      for (const remoteAddress of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
        expect((await app.inject({ method: 'POST', url: GC_ROUTE, remoteAddress })).statusCode).toBe(200);
      }
      for (const remoteAddress of ['10.0.0.7', '192.168.1.2', '::ffff:10.0.0.7', '2001:db8::1']) {
        const res = await app.inject({ method: 'POST', url: GC_ROUTE, remoteAddress });
        expect(res.statusCode).toBe(403);
        expect(res.json()).toMatchObject({ errors: [{ code: 'DENIED' }] });
      }
      expect(runs).toBe(3);
    } finally {
      await app.close();
    }
  });
});
