import { connect } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpApp, listenOn } from '../../../../src/http-app.ts';
import { installErrorHandler } from '../../../../supernode/http/error-handler.ts';
import { MAX_CLIENTS, StatusEvents } from '../../../../supernode/status/status-events.ts';

const apps: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function serve(events: StatusEvents): Promise<URL> {
  const app = createHttpApp(pino({ level: 'silent' }));
  installErrorHandler(app);
  app.get('/events', async (_req, reply) => {
    return events.open(reply);
  });
  app.addHook('preClose', async () => events.close());
  apps.push(app);
  return new URL(await listenOn(app, '127.0.0.1:0'));
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('status events', () => {
  it('sends a JSON snapshot at once and then on every tick', async () => {
    let n = 0;
    const events = new StatusEvents({ snapshot: () => ({ n: n++ }) }, { intervalMs: 20 });
    const url = await serve(events);
    const res = await fetch(new URL('/events', url));
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    while ((text.match(/^data: /gm) ?? []).length < 3) text += new TextDecoder().decode((await reader.read()).value);
    const frames = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as { n: number });
    expect(frames.slice(0, 3).map((f) => f.n)).toEqual([0, 1, 2]);
    await reader.cancel();
    await until(() => events.size === 0);
  });

  it('drops a client that does not read instead of buffering for it, and keeps serving the others', async () => {
    const big = 'x'.repeat(64 * 1024);
    const events = new StatusEvents({ snapshot: () => ({ big }) }, { intervalMs: 5 });
    const url = await serve(events);
    const stalled = connect(Number(url.port), '127.0.0.1');
    stalled.write(`GET /events HTTP/1.1\r\nhost: ${url.host}\r\n\r\n`);
    stalled.pause();
    const res = await fetch(new URL('/events', url));
    const reader = res.body!.getReader();
    const reading = (async () => {
      for (;;) if ((await reader.read()).done) return;
    })();
    await until(() => events.dropped === 1, 20_000);
    expect(events.size).toBe(1);
    await reader.cancel();
    await reading;
    stalled.destroy();
    await until(() => events.size === 0);
  }, 30_000);

  it(`refuses more than ${MAX_CLIENTS} viewers`, async () => {
    const events = new StatusEvents({ snapshot: () => ({}) }, { intervalMs: 1_000 });
    const url = await serve(events);
    const controllers = Array.from({ length: MAX_CLIENTS }, () => new AbortController());
    await Promise.all(controllers.map((c) => fetch(new URL('/events', url), { signal: c.signal })));
    expect(events.size).toBe(MAX_CLIENTS);
    const extra = await fetch(new URL('/events', url));
    expect(extra.status).toBe(503);
    for (const c of controllers) c.abort();
    await until(() => events.size === 0);
  });
});
