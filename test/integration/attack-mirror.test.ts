// The mirror under attack, against real daemons: a docker-registry with token auth granting
// per-repository scopes (anonymous: public/*, alice: private/*, bob: team/*), real `pollen peer`
// processes, raw HTTP clients. Every variant must be refused with the right status and an OCI
// error body, and not one byte of a private blob may be served: other repositories, ?ns=, the
// forward proxy, HEAD vs GET vs Range, cold vs cached, path encodings, upstream up vs down,
// cross-origin redirects, and a second peer that could fetch the blob over P2P.
import { existsSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPSTREAM_HOST } from '../helpers/clients.ts';
import { randomFileLayer, type BuiltLayer } from '../helpers/images.ts';
import { committedSources, startP2pPeer, startSupernodeProcess } from '../helpers/p2p-cluster.ts';
import { PollenProcess } from '../helpers/pollen.ts';
import { ScopedTokenRegistry, type PushedImage } from '../helpers/scoped-token-registry.ts';
import { waitFor } from '../helpers/tools.ts';

const ACCESS_TTL_MS = 1_000;
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP request with the path sent exactly as given (no URL normalisation; absolute URIs allowed). */
function raw(base: string, method: string, path: string, headers: Record<string, string> = {}): Promise<RawReply> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends `CONNECT authority` and returns the status line's code (and closes). */
function connectThrough(base: string, authority: string): Promise<{ status: number; text: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    let text = '';
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (/\r\n\r\n/.test(text)) {
        s.destroy();
        resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
  });
}

/** A loopback server that answers 200 to everything and counts what reached it. */
async function bystander(): Promise<{ url: string; port: number; connections: () => number; requests: () => number; close(): Promise<void> }> {
  let connections = 0;
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '2' }).end('ok');
  });
  server.on('connection', (s: Socket) => {
    connections++;
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connections: () => connections,
    requests: () => requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let scoped: ScopedTokenRegistry;
let peer: PollenProcess;
let pub: PushedImage;
let priv: PushedImage;
let team: PushedImage;
let privateOnly: BuiltLayer;
let shared: BuiltLayer;
const auth = { alicePrivate: '', aliceTeam: '', anonPublic: '', bobTeam: '', bobPrivate: '' };

/** Windows of the private-only layer: none of them may appear in anything a refused client gets. */
function leaksPrivate(body: Buffer): boolean {
  const b = privateOnly.blob;
  return [0, 10, 4096, Math.floor(b.length / 2), b.length - 32].some((o) => body.includes(b.subarray(o, o + 32)));
}

function expectRefused(r: RawReply, method: string, statuses: readonly number[], what: string): void {
  expect(statuses, `${what}: status ${r.status} ${r.body.toString().slice(0, 200)}`).toContain(r.status);
  expect(leaksPrivate(r.body), `${what}: private bytes in the reply`).toBe(false);
  expect(r.headers['docker-content-digest'], what).toBeUndefined();
  if (method === 'HEAD') {
    expect(r.body.length, what).toBe(0);
    return;
  }
  expect(r.headers['content-type'], what).toMatch(/json/);
  const body = JSON.parse(r.body.toString()) as { errors: Array<{ code: string; message: string }> };
  expect(body.errors[0]!.code, what).toMatch(/^[A-Z_]+$/);
  expect(typeof body.errors[0]!.message, what).toBe('string');
  if (r.status === 401) expect(r.headers['www-authenticate'], what).toContain(`Bearer realm="${scoped.tokens.realm}"`);
}

beforeAll(async () => {
  scoped = await ScopedTokenRegistry.start();
  cleanups.push(() => scoped.stop());
  privateOnly = await randomFileLayer('attack-private-only', 600 * 1024);
  shared = await randomFileLayer('attack-shared', 200 * 1024);
  pub = await scoped.push('public/app', [await randomFileLayer('attack-public', 64 * 1024)]);
  priv = await scoped.push('private/app', [privateOnly, shared]);
  team = await scoped.push('team/app', [await randomFileLayer('attack-team', 64 * 1024), shared]);
  peer = await PollenProcess.peer(['--upstream', scoped.url, '--registry', `${UPSTREAM_HOST}=${scoped.url}`, '--access-ttl-ms', String(ACCESS_TTL_MS)]);
  cleanups.push(() => peer.stop());
  auth.alicePrivate = await scoped.bearer('alice', 'private/app');
  auth.aliceTeam = await scoped.bearer('alice', 'team/app');
  auth.anonPublic = await scoped.bearer(undefined, 'public/app');
  auth.bobTeam = await scoped.bearer('bob', 'team/app');
  auth.bobPrivate = await scoped.bearer('bob', 'private/app');
});

/** The ways a client without the right can name the private layer, with the statuses that are right for each. */
function refusalMatrix(): Array<{ what: string; base: string; path: string; headers: Record<string, string>; statuses: number[] }> {
  const d = privateOnly.descriptor.digest;
  const hex = d.slice(7);
  const out: Array<{ what: string; base: string; path: string; headers: Record<string, string>; statuses: number[] }> = [];
  const clients: Array<[string, Record<string, string>, number[]]> = [
    ['anonymous', {}, [401]],
    ['public token', { authorization: auth.anonPublic }, [404]],
  ];
  for (const [who, h, statuses] of clients) {
    for (const suffix of ['', `?ns=${UPSTREAM_HOST}`, `?ns=${scoped.host}`]) {
      out.push({ what: `${who} public/app${suffix}`, base: peer.url, path: `/v2/public/app/blobs/${d}${suffix}`, headers: h, statuses });
    }
    out.push({ what: `${who} proxy to registry`, base: peer.url, path: `${scoped.url}/v2/public/app/blobs/${d}`, headers: h, statuses });
    out.push({ what: `${who} proxy to ${UPSTREAM_HOST}`, base: peer.url, path: `http://${UPSTREAM_HOST}/v2/public/app/blobs/${d}`, headers: h, statuses });
    // Its own repository is not readable with that token at all: the registry's challenge.
    out.push({ what: `${who} private/app`, base: peer.url, path: `/v2/private/app/blobs/${d}`, headers: h, statuses: [401] });
    out.push({ what: `${who} private/other`, base: peer.url, path: `/v2/private/other/blobs/${d}`, headers: h, statuses: [401, 404] });
    out.push({ what: `${who} %2F in name`, base: peer.url, path: `/v2/public%2Fapp/blobs/${d}`, headers: h, statuses });
    out.push({ what: `${who} %3A in digest`, base: peer.url, path: `/v2/public/app/blobs/sha256%3A${hex}`, headers: h, statuses });
    out.push({ what: `${who} %2e%2e`, base: peer.url, path: `/v2/public/app/%2e%2e/%2e%2e/private/app/blobs/${d}`, headers: h, statuses: [400] });
    out.push({ what: `${who} ..`, base: peer.url, path: `/v2/public/app/../../private/app/blobs/${d}`, headers: h, statuses: [400] });
    out.push({ what: `${who} //`, base: peer.url, path: `/v2/public//app/blobs/${d}`, headers: h, statuses: [400] });
    out.push({ what: `${who} leading //`, base: peer.url, path: `//v2/public/app/blobs/${d}`, headers: h, statuses: [404] });
    out.push({ what: `${who} ./`, base: peer.url, path: `/v2/public/app/./blobs/${d}`, headers: h, statuses: [400] });
    out.push({ what: `${who} uppercase digest`, base: peer.url, path: `/v2/public/app/blobs/sha256:${hex.toUpperCase()}`, headers: h, statuses: [400] });
    out.push({ what: `${who} uppercase name`, base: peer.url, path: `/v2/Private/app/blobs/${d}`, headers: h, statuses: [400] });
    out.push({ what: `${who} trailing /`, base: peer.url, path: `/v2/public/app/blobs/${d}/`, headers: h, statuses: [404] });
  }
  return out;
}

/**
 * The client first reads something it may read in public/app (as in the review: a manifest, then
 * the private layer), so a decision cached per repository would let the next request through.
 */
async function primePublic(base: string, headers: Record<string, string>): Promise<void> {
  const r = await raw(base, 'GET', `/v2/public/app/blobs/${pub.layers[0]!.descriptor.digest}`, headers);
  expect(r.status).toBe(headers.authorization ? 200 : 401);
}

async function assertNothingServed(state: string): Promise<void> {
  for (const c of refusalMatrix()) {
    for (const [method, extra] of [['GET', {}], ['HEAD', {}], ['GET', { range: 'bytes=10-5000' }]] as const) {
      await primePublic(peer.url, c.headers);
      const r = await raw(c.base, method, c.path, { ...c.headers, ...extra });
      expectRefused(r, method, c.statuses, `${state}: ${method}${'range' in extra ? ' Range' : ''} ${c.what}`);
    }
  }
}

describe('a client that may read public/app names a private layer', () => {
  it('cold: refused on every path and encoding, and no download was started', async () => {
    await assertNothingServed('cold');
    expect(scoped.registry.blobGets(privateOnly.descriptor.digest)).toHaveLength(0);
    expect(existsSync(join(peer.dataDir, 'content', 'blobs', 'sha256', privateOnly.descriptor.digest.slice(7)))).toBe(false);
  });

  it('a manifest fetches its config ahead only for a client the registry gave it, and the config then goes to no one else', async () => {
    const image = await scoped.push('private/prefetch', [await randomFileLayer('attack-prefetch', 32 * 1024)]);
    const alice = await scoped.bearer('alice', 'private/prefetch');
    const upstream = await fetch(`${scoped.url}/v2/private/prefetch/manifests/v1`, { headers: { authorization: alice, accept: image.manifest.mediaType } });
    const config = ((await upstream.json()) as { config: { digest: string } }).config.digest;
    const stored = join(peer.dataDir, 'content', 'blobs', 'sha256', config.slice('sha256:'.length));
    // Refused the manifest (anonymous, another repository's token): no config download starts.
    for (const headers of [{}, { authorization: auth.anonPublic }, { authorization: auth.bobTeam }] as Array<Record<string, string>>) {
      const r = await raw(peer.url, 'GET', '/v2/private/prefetch/manifests/v1', { ...headers, accept: image.manifest.mediaType });
      expect([401, 403, 404]).toContain(r.status);
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(scoped.registry.blobGets(config)).toHaveLength(0);
    expect(existsSync(stored)).toBe(false);
    // Given to alice: the config comes down before she asks for it.
    const manifest = await raw(peer.url, 'GET', '/v2/private/prefetch/manifests/v1', { authorization: alice, accept: image.manifest.mediaType });
    expect(manifest.status).toBe(200);
    await waitFor(async () => existsSync(stored), 'the config in the store', 10_000);
    // Nobody else reads it, by any repository.
    for (const [what, path, headers, statuses] of [
      ['anonymous', '/v2/private/prefetch/blobs/', {}, [401]],
      ['public token, public/app', '/v2/public/app/blobs/', { authorization: auth.anonPublic }, [404]],
      ['bob, team/app', '/v2/team/app/blobs/', { authorization: auth.bobTeam }, [404]],
    ] as const) {
      for (const method of ['GET', 'HEAD']) {
        const r = await raw(peer.url, method, `${path}${config}`, headers);
        expect(statuses as readonly number[], `${method} ${what}: ${r.status}`).toContain(r.status);
        expect(r.headers['docker-content-digest'], what).toBeUndefined();
      }
    }
    const own = await raw(peer.url, 'GET', `/v2/private/prefetch/blobs/${config}`, { authorization: alice });
    expect(own.status).toBe(200);
  });

  it('cached: refused the same way after alice pulled it through the mirror', async () => {
    const alice = await raw(peer.url, 'GET', `/v2/private/app/blobs/${privateOnly.descriptor.digest}`, { authorization: auth.alicePrivate });
    expect(alice.status).toBe(200);
    expect(alice.body.equals(privateOnly.blob)).toBe(true);
    const aliceShared = await raw(peer.url, 'GET', `/v2/private/app/blobs/${shared.descriptor.digest}`, { authorization: auth.alicePrivate });
    expect(aliceShared.body.equals(shared.blob)).toBe(true);
    const manifest = await raw(peer.url, 'GET', `/v2/private/app/manifests/v1`, { authorization: auth.alicePrivate, accept: priv.manifest.mediaType });
    expect(manifest.status).toBe(200);
    expect(existsSync(join(peer.dataDir, 'content', 'blobs', 'sha256', privateOnly.descriptor.digest.slice(7)))).toBe(true);

    await assertNothingServed('cached');
    // The private manifest, cached by digest, named in public/app.
    for (const method of ['GET', 'HEAD']) {
      await primePublic(peer.url, { authorization: auth.anonPublic });
      const r = await raw(peer.url, method, `/v2/public/app/manifests/${priv.manifest.digest}`, { authorization: auth.anonPublic, accept: priv.manifest.mediaType });
      expectRefused(r, method, [404], `${method} private manifest in public/app`);
      expect(r.body.includes(manifest.body.subarray(0, 64))).toBe(false);
    }
  });

  it('the forward proxy serves a configured registry exactly as the mirror route (alice gets hers, cached)', async () => {
    const before = scoped.registry.blobGets(privateOnly.descriptor.digest).length;
    const r = await raw(peer.url, 'GET', `${scoped.url}/v2/private/app/blobs/${privateOnly.descriptor.digest}`, { authorization: auth.alicePrivate });
    expect(r.status).toBe(200);
    expect(r.body.equals(privateOnly.blob)).toBe(true);
    expect(scoped.registry.blobGets(privateOnly.descriptor.digest).length).toBe(before);
    const pubBlob = pub.layers[0]!;
    const anon = await raw(peer.url, 'GET', `${scoped.url}/v2/public/app/blobs/${pubBlob.descriptor.digest}`, { authorization: auth.anonPublic });
    expect(anon.body.equals(pubBlob.blob)).toBe(true);
  });
});

describe('bob (team/*)', () => {
  it('reads the layer team/app shares with private/app, and still cannot read the private-only layer through team/app', async () => {
    const before = scoped.registry.blobGets(shared.descriptor.digest).length;
    const ok = await raw(peer.url, 'GET', `/v2/team/app/blobs/${shared.descriptor.digest}`, { authorization: auth.bobTeam });
    expect(ok.status).toBe(200);
    expect(ok.body.equals(shared.blob)).toBe(true);
    // Served from the store (alice cached it), after the registry said yes to bob for team/app.
    expect(scoped.registry.blobGets(shared.descriptor.digest).length).toBe(before);
    expect(scoped.registry.accessLog().some((e) => e.method === 'HEAD' && e.path === `/v2/team/app/blobs/${shared.descriptor.digest}`)).toBe(true);
    expect(team.layers).toHaveLength(2);

    // Right after that allowance in team/app, the private-only layer named there.
    for (const [method, extra] of [['GET', {}], ['HEAD', {}], ['GET', { range: 'bytes=10-5000' }]] as const) {
      await raw(peer.url, 'HEAD', `/v2/team/app/blobs/${shared.descriptor.digest}`, { authorization: auth.bobTeam });
      const r = await raw(peer.url, method, `/v2/team/app/blobs/${privateOnly.descriptor.digest}`, { authorization: auth.bobTeam, ...extra });
      expectRefused(r, method, [404], `${method} bob team/app private-only`);
      const p = await raw(peer.url, method, `/v2/private/app/blobs/${shared.descriptor.digest}`, { authorization: auth.bobPrivate, ...extra });
      expectRefused(p, method, [401], `${method} bob private/app shared`);
    }
  });
});

describe('the forward proxy and hosts nobody configured', () => {
  it('refuses absolute-URI requests to any other host:port with 403 and an OCI body, and never connects there', async () => {
    const other = await bystander();
    cleanups.push(() => other.close());
    const targets = [
      `${other.url}/v2/public/app/blobs/${privateOnly.descriptor.digest}`,
      `${other.url}/v2/`,
      `${other.url}/anything`,
      `${peer.metricsUrl}/metrics`,
      `http://localhost:${other.port}/v2/x/manifests/v1`,
      `http://127.0.0.1:1/v2/`,
    ];
    for (const target of targets) {
      for (const method of ['GET', 'HEAD', 'POST']) {
        const r = await raw(peer.url, method, target);
        expectRefused(r, method, [403], `${method} ${target}`);
        if (method === 'GET') expect(JSON.parse(r.body.toString()).errors[0].code).toBe('DENIED');
      }
    }
    expect(other.connections()).toBe(0);
    expect(other.requests()).toBe(0);
  });

  it('refuses CONNECT to anything but a configured registry with 403, open port or not', async () => {
    const other = await bystander();
    cleanups.push(() => other.close());
    for (const authority of [`127.0.0.1:${other.port}`, `localhost:${other.port}`, '127.0.0.1:1', new URL(peer.metricsUrl).host, new URL(peer.url).host, 'example.com:443']) {
      const r = await connectThrough(peer.url, authority);
      expect(r.status, authority).toBe(403);
      expect(r.text).toContain('DENIED');
    }
    expect(other.connections()).toBe(0);
    expect((await connectThrough(peer.url, scoped.host)).status).toBe(200);
  });

  it('answers 404 with an OCI body for /metrics and /healthz on the mirror port; they live on the metrics listener', async () => {
    for (const path of ['/metrics', '/healthz']) {
      const r = await raw(peer.url, 'GET', path);
      expect(r.status).toBe(404);
      expect(JSON.parse(r.body.toString()).errors[0].code).toBe('NOT_FOUND');
    }
    expect((await raw(peer.metricsUrl, 'GET', '/metrics')).body.toString()).toContain('pollen_peer_blob_requests_total');
  });
});

describe('a registry that redirects blob GETs to another origin', () => {
  it('never gives that origin the client’s Authorization, and the client still gets the blob', async () => {
    const seenByStorage: Array<string | undefined> = [];
    const storage = createServer((req, res) => {
      seenByStorage.push(req.headers.authorization);
      const digest = /\/bucket\/(sha256:[0-9a-f]{64})/.exec(req.url ?? '')?.[1];
      const blob = digest === privateOnly.descriptor.digest ? privateOnly.blob : undefined;
      if (!blob) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': String(blob.length) }).end(req.method === 'HEAD' ? undefined : blob);
    });
    await new Promise<void>((resolve) => storage.listen(0, '127.0.0.1', resolve));
    const storageUrl = `http://127.0.0.1:${(storage.address() as AddressInfo).port}`;
    // The registry's front: everything is relayed, except blob GETs, redirected to the storage origin.
    const front: Server = createServer((req, res) => {
      const m = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '');
      if (req.method === 'GET' && m) return void res.writeHead(307, { location: `${storageUrl}/bucket/${m[1]}?X-Amz-Signature=presigned` }).end();
      const up = new URL(scoped.url);
      const out = httpRequest({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      out.on('error', () => res.destroy());
      req.pipe(out);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      await new Promise<void>((resolve) => front.close(() => resolve()));
      await new Promise<void>((resolve) => storage.close(() => resolve()));
    });
    const viaFront = await PollenProcess.peer(['--upstream', `http://127.0.0.1:${(front.address() as AddressInfo).port}`]);
    cleanups.push(() => viaFront.stop());

    const r = await raw(viaFront.url, 'GET', `/v2/private/app/blobs/${privateOnly.descriptor.digest}`, { authorization: auth.alicePrivate });
    expect(r.status).toBe(200);
    expect(r.body.equals(privateOnly.blob)).toBe(true);
    expect(seenByStorage.length).toBeGreaterThan(0);
    expect(seenByStorage.every((a) => a === undefined)).toBe(true);
    // The presigned query is a credential too: not in the peer's logs.
    expect(viaFront.output()).not.toContain('presigned');
  });
});

describe('a second peer that can get the blob over P2P', () => {
  it('refuses the public client before fetching anything, and gives alice the blob from the first peer', async () => {
    const supernode = await startSupernodeProcess(scoped.registry);
    cleanups.push(() => supernode.stop());
    const first = await startP2pPeer(scoped.registry, supernode.url);
    cleanups.push(() => first.stop());
    const second = await startP2pPeer(scoped.registry, supernode.url);
    cleanups.push(() => second.stop());
    const path = `/v2/private/app/blobs/${privateOnly.descriptor.digest}`;
    const got = await raw(first.url, 'GET', path, { authorization: auth.alicePrivate });
    expect(got.body.equals(privateOnly.blob)).toBe(true);

    for (const method of ['GET', 'HEAD']) {
      for (const extra of [{}, { range: 'bytes=10-5000' }]) {
        await primePublic(second.url, { authorization: auth.anonPublic });
        const r = await raw(second.url, method, `/v2/public/app/blobs/${privateOnly.descriptor.digest}`, { authorization: auth.anonPublic, ...(extra as Record<string, string>) });
        expectRefused(r, method, [404], `second peer ${method}`);
      }
    }
    // Nothing was fetched or stored for the refused client.
    expect(existsSync(join(second.dataDir, 'content', 'blobs', 'sha256', privateOnly.descriptor.digest.slice(7)))).toBe(false);
    expect(second.output()).not.toContain(`"digest":"${privateOnly.descriptor.digest}"`);

    const alice = await raw(second.url, 'GET', path, { authorization: auth.alicePrivate });
    expect(alice.status).toBe(200);
    expect(alice.body.equals(privateOnly.blob)).toBe(true);
    // Its bytes came over P2P (the commit is logged just after the last byte is released).
    await waitFor(async () => second.output().split('\n').some((l) => l.includes('"blob committed"') && l.includes(privateOnly.descriptor.digest)), 'the second peer commits the blob');
    const sources = committedSources(second.output(), privateOnly.descriptor.digest);
    expect(sources.peer + sources.seed).toBeGreaterThan(0);
    // The transfer's own counts: in the committed line and on the metrics listener.
    const line = second.output().split('\n').find((l) => l.includes('"blob committed"') && l.includes(privateOnly.descriptor.digest))!;
    const committed = JSON.parse(line) as { received: number; duplicates: Record<string, number>; fallbacks: number; stalls: number; starvedGrants: number };
    expect(committed.received).toBeGreaterThanOrEqual(sources.peer + sources.seed);
    expect(Object.keys(committed.duplicates)).toEqual(expect.arrayContaining(['endgame', 'starved-seed-grant', 'stall-reassign', 'fallback-overlap']));
    expect(committed.fallbacks).toBe(0);
    const metrics = (await raw(second.metricsUrl, 'GET', '/metrics')).body.toString();
    for (const name of ['pollen_duplicate_bytes_total', 'pollen_fallbacks_total', 'pollen_piece_stalls_total', 'pollen_starved_grants_total']) expect(metrics).toContain(`# TYPE ${name} counter`);
    expect(metrics).toMatch(/^pollen_fallbacks_total 0$/m);
  });
});

describe('the registry goes down', () => {
  it('serves the cached blob only to the client the registry allowed that digest in that repository before', async () => {
    // Alice's allowance is recent; let the TTL pass so the offline grace path decides.
    await raw(peer.url, 'HEAD', `/v2/private/app/blobs/${privateOnly.descriptor.digest}`, { authorization: auth.alicePrivate });
    await scoped.registry.stop();
    await new Promise((resolve) => setTimeout(resolve, ACCESS_TTL_MS + 200));

    const d = privateOnly.descriptor.digest;
    const alice = await raw(peer.url, 'GET', `/v2/private/app/blobs/${d}`, { authorization: auth.alicePrivate });
    expect(alice.status).toBe(200);
    expect(alice.body.equals(privateOnly.blob)).toBe(true);
    const aliceRange = await raw(peer.url, 'GET', `/v2/private/app/blobs/${d}`, { authorization: auth.alicePrivate, range: 'bytes=10-99' });
    expect(aliceRange.status).toBe(206);
    expect(aliceRange.body.equals(privateOnly.blob.subarray(10, 100))).toBe(true);

    const refused: Array<[string, string, Record<string, string>]> = [
      ['anonymous', `/v2/private/app/blobs/${d}`, {}],
      ['public token, public/app', `/v2/public/app/blobs/${d}`, { authorization: auth.anonPublic }],
      ['public token, ns', `/v2/public/app/blobs/${d}?ns=${UPSTREAM_HOST}`, { authorization: auth.anonPublic }],
      ['public token, proxy', `${scoped.url}/v2/public/app/blobs/${d}`, { authorization: auth.anonPublic }],
      ['bob, team/app', `/v2/team/app/blobs/${d}`, { authorization: auth.bobTeam }],
      ['alice, another repository', `/v2/team/app/blobs/${d}`, { authorization: auth.aliceTeam }],
      ['alice, public/app', `/v2/public/app/blobs/${d}`, { authorization: auth.alicePrivate }],
    ];
    for (const [what, path, headers] of refused) {
      for (const [method, extra] of [['GET', {}], ['HEAD', {}], ['GET', { range: 'bytes=10-5000' }]] as const) {
        const r = await raw(peer.url, method, path, { ...headers, ...extra });
        expectRefused(r, method, [502], `offline ${method} ${what}`);
      }
    }
    // The tag's last digest likewise: alice yes, the public client no.
    const tag = await raw(peer.url, 'GET', '/v2/private/app/manifests/v1', { authorization: auth.alicePrivate, accept: priv.manifest.mediaType });
    expect(tag.status).toBe(200);
    const anonTag = await raw(peer.url, 'GET', '/v2/private/app/manifests/v1', { authorization: auth.anonPublic, accept: priv.manifest.mediaType });
    expectRefused(anonTag, 'GET', [502], 'offline tag, public token');
  });
});
