// Redirects and secrets in RegistryClient: Authorization stays with the registry's origin (the
// registry → blob storage redirect must not hand the client's token to the storage host), and
// neither userinfo nor a presigned query ever shows in an error.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../../src/oci/registry-client.ts';
import { redactUrl } from '../../../../src/oci/redact-url.ts';

interface Recorder {
  url: string;
  seen: Array<{ path: string; headers: IncomingHttpHeaders }>;
  server: Server;
}

type Answer = { status: number; headers?: Record<string, string>; body?: string };

async function listen(handler: (path: string, rec: Recorder) => Answer): Promise<Recorder> {
  const rec: Recorder = { url: '', seen: [], server: undefined as unknown as Server };
  rec.server = createServer((req, res) => {
    const path = req.url ?? '/';
    rec.seen.push({ path, headers: req.headers });
    const r = handler(path, rec);
    res.writeHead(r.status, r.headers).end(r.body);
  });
  await new Promise<void>((resolve) => rec.server.listen(0, '127.0.0.1', resolve));
  rec.url = `http://127.0.0.1:${(rec.server.address() as AddressInfo).port}`;
  return rec;
}

const TOKEN = 'Bearer client-token';
let storage: Recorder;
let registry: Recorder;

beforeAll(async () => {
  storage = await listen((path): Answer =>
    path.startsWith('/back') ? { status: 307, headers: { location: `${registry.url}/v2/x/blobs/landed` } } : { status: 200, headers: { 'content-length': '4' }, body: 'blob' },
  );
  registry = await listen((path): Answer => {
    if (path === '/v2/x/blobs/cross') return { status: 307, headers: { location: `${storage.url}/bucket/cross?X-Amz-Signature=s3cr3t` } };
    if (path === '/v2/x/blobs/same') return { status: 307, headers: { location: '/storage/same' } };
    if (path === '/v2/x/blobs/bounce') return { status: 302, headers: { location: `${storage.url}/back` } };
    if (path === '/v2/x/blobs/loop') return { status: 307, headers: { location: '/v2/x/blobs/loop' } };
    if (path === '/v2/x/blobs/nowhere') return { status: 307, headers: { location: 'http://127.0.0.1:1/bucket?X-Amz-Signature=s3cr3t' } };
    return { status: 200, headers: { 'content-length': '4' }, body: 'blob' };
  });
});

afterAll(async () => {
  for (const r of [storage, registry]) await new Promise<void>((resolve) => r.server.close(() => resolve()));
});

const lastAuth = (r: Recorder, prefix: string) => r.seen.filter((s) => s.path.startsWith(prefix)).at(-1)?.headers.authorization;

describe('RegistryClient redirects', () => {
  it('drops Authorization on a redirect to another origin, and the blob still arrives', async () => {
    const client = new RegistryClient({}, { baseUrl: registry.url });
    const res = await client.request('GET', '/v2/x/blobs/cross', { headers: { authorization: TOKEN }, scope: 'repository:x:pull', relayAuth: true });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('blob');
    expect(lastAuth(registry, '/v2/x/blobs/cross')).toBe(TOKEN);
    expect(lastAuth(storage, '/bucket/cross')).toBeUndefined();
  });

  it('keeps Authorization on a redirect within the registry’s origin', async () => {
    const client = new RegistryClient({}, { baseUrl: registry.url });
    const res = await client.request('HEAD', '/v2/x/blobs/same', { headers: { authorization: TOKEN }, scope: 'repository:x:pull', relayAuth: true });
    await res.body.dump();
    expect(lastAuth(registry, '/storage/same')).toBe(TOKEN);
  });

  it('does not send it again once it left the origin, even when redirected back', async () => {
    const client = new RegistryClient({}, { baseUrl: registry.url });
    const res = await client.request('GET', '/v2/x/blobs/bounce', { headers: { authorization: TOKEN }, scope: 'repository:x:pull', relayAuth: true });
    await res.body.dump();
    expect(lastAuth(storage, '/back')).toBeUndefined();
    expect(lastAuth(registry, '/v2/x/blobs/landed')).toBeUndefined();
  });

  it('drops the credentials it derived itself (static Basic) the same way', async () => {
    const client = new RegistryClient({}, { baseUrl: registry.url, credentials: { username: 'bot', password: 'pw' } });
    const res = await client.request('GET', '/v2/x/blobs/cross', { scope: 'repository:x:pull' });
    await res.body.dump();
    expect(lastAuth(registry, '/v2/x/blobs/cross')).toMatch(/^Basic /);
    expect(lastAuth(storage, '/bucket/cross')).toBeUndefined();
  });

  it('gives up on a redirect loop with ERR_UPSTREAM_PROTOCOL', async () => {
    const client = new RegistryClient({}, { baseUrl: registry.url });
    await expect(client.request('GET', '/v2/x/blobs/loop', { scope: 'repository:x:pull', relayAuth: true })).rejects.toMatchObject({ code: 'ERR_UPSTREAM_PROTOCOL' });
  });

  it('names an unreachable redirect target without its presigned query', async () => {
    const client = new RegistryClient({}, { baseUrl: registry.url });
    const err = await client.request('GET', '/v2/x/blobs/nowhere', { scope: 'repository:x:pull', relayAuth: true }).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'ERR_UPSTREAM_UNAVAILABLE' });
    expect(JSON.stringify({ m: (err as Error).message, d: (err as unknown as { detail: unknown }).detail })).not.toContain('s3cr3t');
  });
});

describe('userinfo in a registry URL', () => {
  it('is used as credentials and never appears in errors', async () => {
    const client = new RegistryClient({}, { baseUrl: `${registry.url.replace('http://', 'http://bot:hunter2@')}` });
    expect(client.baseUrl).toBe(registry.url);
    expect(client.displayUrl).not.toContain('hunter2');
    const res = await client.request('GET', '/v2/x/blobs/plain', { scope: 'repository:x:pull' });
    await res.body.dump();
    expect(lastAuth(registry, '/v2/x/blobs/plain')).toBe(`Basic ${Buffer.from('bot:hunter2').toString('base64')}`);

    const down = new RegistryClient({}, { baseUrl: 'http://bot:hunter2@127.0.0.1:1' });
    const err = await down.getManifest('x', 'v1').catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'ERR_UPSTREAM_UNAVAILABLE' });
    expect(JSON.stringify({ m: (err as Error).message, d: (err as unknown as { detail: unknown }).detail })).not.toContain('hunter2');
  });

  it('redactUrl removes userinfo and query, and leaves plain URLs alone', () => {
    expect(redactUrl('https://u:p@r.example:5000/v2/?a=b')).toBe('https://r.example:5000/v2/?…');
    expect(redactUrl('http://127.0.0.1:5000')).toBe('http://127.0.0.1:5000');
    expect(redactUrl('not a url //u:p@x?q')).not.toContain('u:p');
  });
});

describe('RegistryClient connections', () => {
  it('keeps the connection across HEADs and GETs (undici would close it after every HEAD)', async () => {
    const rec = await listen(() => ({ status: 200, headers: { 'content-length': '4' }, body: 'blob' }));
    let connections = 0;
    rec.server.on('connection', () => connections++);
    try {
      const client = new RegistryClient({}, { baseUrl: rec.url });
      for (let i = 0; i < 6; i++) {
        expect(await client.headBlob('x', `sha256:${'0'.repeat(63)}${i}` as never)).toBe(4);
        const res = await client.request('GET', '/v2/x/blobs/y', { scope: 'repository:x:pull' });
        expect(await res.body.text()).toBe('blob');
      }
      expect(connections).toBeLessThanOrEqual(2);
    } finally {
      rec.server.closeAllConnections();
      await new Promise<void>((resolve) => rec.server.close(() => resolve()));
    }
  });
});
