import { connect } from 'node:net';
import { Readable, Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BlobSourceBook, MirrorObserver } from '../../../peer/metrics-mirror.ts';
import { PeerMetrics } from '../../../peer/metrics-peer.ts';

const BLOB = `sha256:${'a'.repeat(64)}`;
const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function mirror(accessLog: boolean): Promise<{ url: string; lines: () => Array<Record<string, unknown>>; metrics: PeerMetrics; observer: MirrorObserver }> {
  const out: string[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (out.push(c.toString()), cb()) });
  const metrics = new PeerMetrics(() => undefined);
  const observer = new MirrorObserver({ metrics, logger: pino({ level: 'info' }, sink) }, { accessLog });
  const app = Fastify();
  apps.push(app);
  observer.install(app);
  app.get('/v2/app/blobs/:digest', async (req, reply) => {
    observer.noteOutcome(req, (req.query as { hit?: string }).hit ? 'hit' : 'miss');
    let n = 0;
    const body = new Readable({ read() { setTimeout(() => this.push(n++ < 20 ? Buffer.alloc(64 * 1024) : null), 10); } });
    return reply.header('content-length', String(20 * 64 * 1024)).send(body);
  });
  app.get('/v2/app/manifests/:ref', async () => ({ schemaVersion: 2 }));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, metrics, observer, lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('MirrorObserver', () => {
  it('logs one access line per request with status, bytes, source and duration, and times it by kind and outcome', async () => {
    const m = await mirror(true);
    m.observer.sources.add(BLOB, 'seed', 100);
    m.observer.sources.add(BLOB, 'peer', 900);
    await (await fetch(`${m.url}/v2/app/blobs/${BLOB}`)).arrayBuffer();
    await (await fetch(`${m.url}/v2/app/blobs/${BLOB}?hit=1`)).arrayBuffer();
    await (await fetch(`${m.url}/v2/app/manifests/v1`)).arrayBuffer();
    await until(() => m.lines().length === 3);
    // Lines come as responses close, not in request order.
    const find = (f: (l: Record<string, unknown>) => boolean): Record<string, unknown> | undefined => m.lines().find(f);
    const miss = find((l) => l.source === 'peer');
    const hit = find((l) => l.source === 'local');
    const manifest = find((l) => String(l.path).includes('/manifests/'));
    expect(miss).toMatchObject({ msg: 'access', component: 'access', method: 'GET', path: `/v2/app/blobs/${BLOB}`, status: 200, bytes: 20 * 64 * 1024, source: 'peer' });
    expect(miss!.ms).toBeGreaterThan(50);
    expect(hit).toMatchObject({ source: 'local', bytes: 20 * 64 * 1024 });
    expect(manifest).toMatchObject({ path: '/v2/app/manifests/v1', status: 200 });
    expect(manifest).not.toHaveProperty('source');
    const text = await m.metrics.metrics.text();
    expect(text).toMatch(/pollen_peer_mirror_request_duration_seconds_count\{kind="blob",outcome="miss"\} 1/);
    expect(text).toMatch(/pollen_peer_mirror_request_duration_seconds_count\{kind="manifest",outcome="none"\} 1/);
    expect(text).toMatch(new RegExp(`pollen_peer_bytes_total\\{direction="upload",source="local_cache"\\} ${20 * 64 * 1024}`));
  });

  it('logs a client that left mid-blob as aborted, with no bytes counted', async () => {
    const m = await mirror(true);
    // A raw socket, closed after the first bytes of the body (fetch's abort may keep the socket).
    const { port } = new URL(m.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write(`GET /v2/app/blobs/${BLOB}?hit=1 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
    await new Promise((r) => socket.once('data', r));
    socket.destroy();
    await until(() => m.lines().length === 1);
    expect(m.lines()[0]).toMatchObject({ aborted: true, bytes: 0, source: 'local' });
    expect(await m.metrics.metrics.text()).toMatch(/pollen_peer_bytes_total\{direction="upload",source="local_cache"\} 0/);
  });

  it('writes no access lines with --access-log false, and still keeps the metrics', async () => {
    const m = await mirror(false);
    await (await fetch(`${m.url}/v2/app/manifests/v1`)).arrayBuffer();
    await new Promise((r) => setTimeout(r, 50));
    expect(m.lines()).toEqual([]);
    expect(await m.metrics.metrics.text()).toMatch(/pollen_peer_mirror_request_duration_seconds_count\{kind="manifest",outcome="none"\} 1/);
  });
});

describe('BlobSourceBook', () => {
  it('names the source that sent most of a blob, the registry when none reported, and stays bounded', () => {
    const book = new BlobSourceBook();
    expect(book.main(BLOB)).toBe('registry');
    book.add(BLOB, 'seed', 10);
    book.add(BLOB, 'peer', 5);
    expect(book.main(BLOB)).toBe('seed');
    for (let i = 0; i < 5_000; i++) book.add(`sha256:${String(i).padStart(64, '0')}`, 'peer', 1);
    expect(book.size).toBeLessThanOrEqual(1_024);
  });
});
