// The mirror against an htpasswd-protected registry, a corrupting upstream, and an upstream that
// goes away: private content stays private, bad bytes never reach the store, tags survive outages.
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Containerd, skopeoPullViaMirror, UPSTREAM_HOST } from '../helpers/clients.ts';
import { PollenProcess } from '../helpers/pollen.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { pushStandardImages, type StandardImages } from '../helpers/test-images.ts';
import { TOKEN_ISSUER, TOKEN_SERVICE, TokenServer } from '../helpers/token-server.ts';
import { freePort, waitFor } from '../helpers/tools.ts';

const OCI_MANIFEST = { accept: 'application/vnd.oci.image.manifest.v1+json' };
const cleanups: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

describe('an htpasswd-protected registry', () => {
  const creds = { username: 'alice', password: 'wonderland' };
  let registry: TestRegistry;
  let images: StandardImages;
  let peer: PollenProcess;

  beforeAll(async () => {
    registry = await TestRegistry.start({ auth: creds });
    cleanups.push(() => registry.stop());
    images = await pushStandardImages(registry, { largeLayerBytes: 4 * 1024 * 1024 });
    peer = await PollenProcess.peer(['--upstream', registry.url, '--registry', `${UPSTREAM_HOST}=${registry.url}`]);
    cleanups.push(() => peer.stop());
  });

  it('lets a client with credentials pull through the mirror (skopeo, its own auth flow)', async () => {
    const dest = await mkdtemp(join(tmpdir(), 'pollen-auth-'));
    cleanups.push(() => rm(dest, { recursive: true, force: true }));
    await skopeoPullViaMirror(peer.host, images.app.ref, dest, { creds: `${creds.username}:${creds.password}` });
    const names = await readdir(join(dest, 'blobs', 'sha256'));
    for (const l of images.app.layers) expect(names).toContain(l.descriptor.digest.slice(7));
  });

  it('answers a client without credentials with the registry challenge, and never with a blob an authorised client cached', async () => {
    const layer = images.app.layers[1]!;
    const url = `${peer.url}/v2/${images.app.name}/blobs/${layer.descriptor.digest}`;
    // The authorised pull above cached the blob.
    const authorised = await fetch(url, { headers: { authorization: basic(creds.username, creds.password) } });
    expect(authorised.status).toBe(200);
    expect(Buffer.from(await authorised.arrayBuffer()).equals(layer.blob)).toBe(true);

    const anonymous = await fetch(url);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm="pollen"/);
    const body = await anonymous.text();
    expect(body.length).toBeLessThan(1000);
    expect(JSON.parse(body).errors[0].code).toBe('UNAUTHORIZED');

    const wrong = await fetch(url, { headers: { authorization: basic(creds.username, 'guess') } });
    expect(wrong.status).toBe(401);
    await wrong.arrayBuffer();

    const manifest = await fetch(`${peer.url}/v2/${images.app.name}/manifests/${images.app.manifest.digest}`, { headers: OCI_MANIFEST });
    expect(manifest.status).toBe(401);
    await manifest.arrayBuffer();

    const ping = await fetch(`${peer.url}/v2/`);
    expect(ping.status).toBe(401);
    expect(ping.headers.get('www-authenticate')).toMatch(/^Basic/);
    await ping.arrayBuffer();
  });

  it('fetches the config an image manifest names before its client asks for it, as that client: a client without credentials still gets the challenge', async () => {
    const auth = { authorization: basic(creds.username, creds.password) };
    const res = await fetch(`${peer.url}/v2/${images.docker.name}/manifests/v1`, { headers: { ...auth, accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect(res.status).toBe(200);
    const config = ((await res.json()) as { config: { digest: string } }).config.digest;
    // Nobody asked for the config: the manifest's GET started its download.
    const file = join(peer.dataDir, 'content', 'blobs', 'sha256', config.slice('sha256:'.length));
    await waitFor(async () => (await stat(file).catch(() => undefined)) !== undefined, 'the config in the store', 10_000);

    const anonymous = await fetch(`${peer.url}/v2/${images.docker.name}/blobs/${config}`);
    expect(anonymous.status).toBe(401);
    await anonymous.arrayBuffer();
    const own = await fetch(`${peer.url}/v2/${images.docker.name}/blobs/${config}`, { headers: auth });
    expect(own.status).toBe(200);
    expect(`sha256:${createHash('sha256').update(Buffer.from(await own.arrayBuffer())).digest('hex')}`).toBe(config);
  });

  it('refuses a pull by skopeo without credentials', async () => {
    const dest = await mkdtemp(join(tmpdir(), 'pollen-noauth-'));
    cleanups.push(() => rm(dest, { recursive: true, force: true }));
    await expect(skopeoPullViaMirror(peer.host, images.app.ref, dest)).rejects.toThrow(/unauthorized|authentication required|401/i);
  });

  it('uses static credentials from the config for clients that send none', async () => {
    const withCreds = await PollenProcess.peer(['--upstream', registry.url, '--credentials', `${registry.host}=${creds.username}:${creds.password}`]);
    cleanups.push(() => withCreds.stop());
    const layer = images.app.layers[0]!;
    const res = await fetch(`${withCreds.url}/v2/${images.app.name}/blobs/${layer.descriptor.digest}`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(layer.blob)).toBe(true);
    expect(withCreds.output()).not.toContain(creds.password);
  });
});

describe('a registry with Bearer token auth (the distribution token flow)', () => {
  const creds = { username: 'bob', password: 'builder' };
  let tokens: TokenServer;
  let registry: TestRegistry;
  let images: StandardImages;
  let peer: PollenProcess;

  beforeAll(async () => {
    tokens = await TokenServer.start(creds);
    cleanups.push(() => tokens.stop());
    registry = await TestRegistry.start({ tokenAuth: { realm: tokens.realm, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, rootCertBundle: tokens.certPath, credentials: creds } });
    cleanups.push(() => registry.stop());
    images = await pushStandardImages(registry, { largeLayerBytes: 2 * 1024 * 1024 });
    peer = await PollenProcess.peer(['--upstream', registry.url, '--registry', `${UPSTREAM_HOST}=${registry.url}`]);
    cleanups.push(() => peer.stop());
  });

  it('relays the Bearer challenge so skopeo and containerd run their own token flow through the mirror', async () => {
    const dest = await mkdtemp(join(tmpdir(), 'pollen-bearer-'));
    cleanups.push(() => rm(dest, { recursive: true, force: true }));
    await skopeoPullViaMirror(peer.host, images.app.ref, dest, { creds: `${creds.username}:${creds.password}` });
    const names = await readdir(join(dest, 'blobs', 'sha256'));
    for (const l of images.app.layers) expect(names).toContain(l.descriptor.digest.slice(7));

    const containerd = await Containerd.start();
    try {
      await containerd.pullViaMirror(peer.host, images.docker.ref, { user: `${creds.username}:${creds.password}` });
      expect((await containerd.contentGet(images.docker.layers[0]!.descriptor.digest)).equals(images.docker.layers[0]!.blob)).toBe(true);
    } finally {
      await containerd.stop();
    }
    // The clients fetched their tokens themselves, with their credentials.
    expect(tokens.issued.filter((t) => t.user === creds.username && t.granted).length).toBeGreaterThan(0);
  });

  it('gives an anonymous client the Bearer challenge, not the cached blob', async () => {
    const layer = images.app.layers[1]!;
    const res = await fetch(`${peer.url}/v2/${images.app.name}/blobs/${layer.descriptor.digest}`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain(`Bearer realm="${tokens.realm}"`);
    expect((await res.text()).length).toBeLessThan(1000);
  });
});

/** An HTTP proxy in front of the registry that flips one byte in blob bodies while `corrupt` is on. */
async function corruptingProxy(target: string): Promise<{ url: string; setCorrupt(on: boolean): void; close(): Promise<void> }> {
  let corrupt = true;
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    const out = httpRequest({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      let offset = 0;
      const isBlob = req.method === 'GET' && (req.url ?? '').includes('/blobs/');
      up.on('data', (chunk: Buffer) => {
        if (corrupt && isBlob && offset <= 1000 && offset + chunk.length > 1000) chunk[1000 - offset] = chunk[1000 - offset]! ^ 0xff;
        offset += chunk.length;
        res.write(chunk);
      });
      up.on('end', () => res.end());
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    setCorrupt: (on) => void (corrupt = on),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('an upstream that corrupts a byte', () => {
  it('gives the client an error, commits nothing, and the next clean pull works', async () => {
    const registry = await TestRegistry.start();
    cleanups.push(() => registry.stop());
    const images = await pushStandardImages(registry, { largeLayerBytes: 2 * 1024 * 1024 });
    const proxy = await corruptingProxy(registry.url);
    cleanups.push(() => proxy.close());
    const peer = await PollenProcess.peer(['--upstream', proxy.url]);
    cleanups.push(() => peer.stop());
    const layer = images.app.layers[1]!;
    const url = `${peer.url}/v2/${images.app.name}/blobs/${layer.descriptor.digest}`;

    const bad = await fetch(url);
    expect(bad.status).toBe(200);
    await expect(bad.arrayBuffer()).rejects.toThrow();
    // Nothing reached the store, and the peer says so: the next request downloads again.
    const stored = await readdir(join(peer.dataDir, 'content', 'blobs', 'sha256'));
    expect(stored).not.toContain(layer.descriptor.digest.slice(7));
    // The log line follows the client's error by a moment (a loaded CI machine missed it once).
    await waitFor(async () => /ERR_DIGEST_MISMATCH/.test(peer.output()), 'the peer to log the digest mismatch', 10_000);

    proxy.setCorrupt(false);
    const good = await fetch(url);
    expect(good.status).toBe(200);
    expect(Buffer.from(await good.arrayBuffer()).equals(layer.blob)).toBe(true);
    // The commit (fsync, rename, quota accounting) follows the verified last byte.
    await waitFor(async () => (await readdir(join(peer.dataDir, 'content', 'blobs', 'sha256'))).includes(layer.descriptor.digest.slice(7)), 'the clean blob is committed', 10_000);
  });
});

describe('an upstream that sends an oversized manifest', () => {
  it('is refused with 413 and nothing cached; the daemon serves on', async () => {
    const huge = Buffer.alloc(5 * 1024 * 1024, 0x20);
    const server = createServer((req, res) => {
      if (req.url?.includes('/manifests/')) res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(huge);
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
    const peer = await PollenProcess.peer(['--upstream', `http://127.0.0.1:${port}`]);
    cleanups.push(() => peer.stop());
    const res = await fetch(`${peer.url}/v2/ns/big/manifests/v1`, { headers: OCI_MANIFEST });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('SIZE_INVALID');
    expect((await fetch(`${peer.metricsUrl}/healthz`)).status).toBe(200);
  });
});

describe('an upstream that goes away', () => {
  it('serves the last known digest of a tag and cached blobs to a client it allowed before, and says which upstream failed otherwise', async () => {
    const registry = await TestRegistry.start();
    const images = await pushStandardImages(registry, { largeLayerBytes: 1024 * 1024 });
    const peer = await PollenProcess.peer(['--upstream', registry.url]);
    cleanups.push(() => peer.stop());
    const layer = images.app.layers[0]!;
    const manifestUrl = `${peer.url}/v2/${images.app.name}/manifests/v1`;
    const blobUrl = `${peer.url}/v2/${images.app.name}/blobs/${layer.descriptor.digest}`;
    const first = await fetch(manifestUrl, { headers: OCI_MANIFEST });
    const manifest = Buffer.from(await first.arrayBuffer());
    await (await fetch(blobUrl)).arrayBuffer();
    await registry.stop();

    const offline = await fetch(manifestUrl, { headers: OCI_MANIFEST });
    expect(offline.status).toBe(200);
    expect(offline.headers.get('docker-content-digest')).toBe(images.app.manifest.digest);
    expect(Buffer.from(await offline.arrayBuffer()).equals(manifest)).toBe(true);
    const blob = await fetch(blobUrl);
    expect(blob.status).toBe(200);
    expect(Buffer.from(await blob.arrayBuffer()).equals(layer.blob)).toBe(true);
    expect(peer.output()).toMatch(/serving the last known digest/);

    const unknown = await fetch(`${peer.url}/v2/${images.app.name}/manifests/never-seen`, { headers: OCI_MANIFEST });
    expect(unknown.status).toBe(502);
    const body = (await unknown.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0]!.message).toContain(registry.url);
  });
});
