import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLevelKv } from '../../../src/db.ts';
import { ReadinessProbe, httpReachableCheck, kvCheck, writableDirCheck } from '../../../src/health.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pollen-health-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readiness checks', () => {
  it('a writable directory passes and keeps no probe file; a missing one fails with the path', async () => {
    expect(await writableDirCheck('store', dir).run(AbortSignal.timeout(1000))).toBeUndefined();
    expect(await readdir(dir)).toEqual([]);
    expect(await writableDirCheck('store', join(dir, 'gone')).run(AbortSignal.timeout(1000))).toMatch(/cannot write .*gone: ENOENT/);
  });

  it('the metadata database passes while it answers, keeping no probe key, and fails with the reason once closed', async () => {
    const db = await openLevelKv<string>(join(dir, 'meta'));
    const check = kvCheck('metadata', db.sub<string>('readyz'));
    expect(await check.run(AbortSignal.timeout(1000))).toBeUndefined();
    const keys: string[] = [];
    for await (const [k] of db.entries()) keys.push(k);
    expect(keys).toEqual([]);
    await db.close();
    expect(await check.run(AbortSignal.timeout(1000))).toMatch(/^the metadata store fails: /);
  });

  it('an HTTP endpoint is reachable when it answers below 500 (a 401 counts), not when it is down or failing', async () => {
    let status = 401;
    const server = createServer((_req, res) => res.writeHead(status).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v2/`;
    expect(await httpReachableCheck('upstream', url).run(AbortSignal.timeout(2000))).toBeUndefined();
    status = 503;
    expect(await httpReachableCheck('upstream', url).run(AbortSignal.timeout(2000))).toMatch(/answered 503/);
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    expect(await httpReachableCheck('upstream', url).run(AbortSignal.timeout(2000))).toMatch(/^http:\/\/127.0.0.1:\d+ unreachable: /);
  });

  it('reports every failing check by name, and runs the checks at most once a second', async () => {
    let runs = 0;
    const probe = new ReadinessProbe([
      { name: 'a', run: async () => (runs++, undefined) },
      { name: 'b', run: async () => 'b is down' },
      { name: 'c', run: async () => { throw new Error('boom'); } },
    ]);
    expect(await probe.check()).toEqual({ ready: false, checks: { a: 'ok', b: 'b is down', c: 'boom' } });
    await probe.check();
    expect(runs).toBe(1);
    expect(await new ReadinessProbe([{ name: 'a', run: async () => undefined }]).check()).toEqual({ ready: true, checks: { a: 'ok' } });
  });
});
