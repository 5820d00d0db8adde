// The peer as a registry mirror, end to end: a real registry, real `pollen peer` processes, real
// clients (skopeo, containerd's ctr, curl).
import { readFile, rm, mkdtemp } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Containerd, skopeoPullViaMirror, UPSTREAM_HOST } from '../helpers/clients.ts';
import { PollenProcess } from '../helpers/pollen.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { pushStandardImages, type StandardImages } from '../helpers/test-images.ts';
import { execFileP, requireTool } from '../helpers/tools.ts';
import { MALLOC_TUNABLES } from '../../src/malloc-tunables.ts';

let registry: TestRegistry;
let images: StandardImages;
const peers: PollenProcess[] = [];
const scratch: string[] = [];

async function startPeer(extra: string[] = []): Promise<PollenProcess> {
  const p = await PollenProcess.peer(['--upstream', registry.url, '--registry', `${UPSTREAM_HOST}=${registry.url}`, ...extra]);
  peers.push(p);
  return p;
}

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'pollen-pull-'));
  scratch.push(d);
  return d;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

beforeAll(async () => {
  registry = await TestRegistry.start();
  images = await pushStandardImages(registry);
});

afterAll(async () => {
  for (const p of peers) await p.stop();
  await registry?.stop();
  for (const d of scratch) await rm(d, { recursive: true, force: true });
});

describe('pulls through the mirror with real clients', () => {
  let peer: PollenProcess;
  beforeAll(async () => {
    peer = await startPeer();
  });

  it('skopeo pulls a multi-layer image bit-identical to the source, and a second pull is served from the store', async () => {
    const dest = await tempDir();
    await skopeoPullViaMirror(peer.host, images.app.ref, dest);
    for (const layer of images.app.layers) {
      const pulled = await readFile(join(dest, 'blobs', 'sha256', layer.descriptor.digest.slice(7)));
      expect(sha256(pulled)).toBe(layer.descriptor.digest);
      expect(pulled.equals(layer.blob)).toBe(true);
    }
    const blobGetsAfterFirst = registry.blobGets().length;
    expect(blobGetsAfterFirst).toBeGreaterThan(0);

    const again = await tempDir();
    await skopeoPullViaMirror(peer.host, images.app.ref, again);
    expect(registry.blobGets().length).toBe(blobGetsAfterFirst);
    const large = images.app.layers[1]!.descriptor.digest;
    expect((await readFile(join(again, 'blobs', 'sha256', large.slice(7)))).equals(images.blobs.get(large)!)).toBe(true);
  });

  it('runs with malloc on huge pages, as every launcher starts it, and says so when it starts', async () => {
    const environ = (await readFile(`/proc/${peer.pid}/environ`, 'utf8')).split('\0');
    expect(environ).toContain(`GLIBC_TUNABLES=${MALLOC_TUNABLES}`);
    expect(peer.output()).toMatch(/"mallocHugepages":true[^\n]*"msg":"peer mirror listening"/);
  });

  it('skopeo pulls this platform out of an OCI index, and a Docker schema 2 image', async () => {
    const multi = await tempDir();
    await skopeoPullViaMirror(peer.host, images.multi.ref, multi);
    const amd64 = images.multi.platforms.find((p) => p.manifest.platform?.architecture === 'amd64')!;
    const layer = amd64.layers[0]!;
    expect((await readFile(join(multi, 'blobs', 'sha256', layer.descriptor.digest.slice(7)))).equals(layer.blob)).toBe(true);

    const docker = await tempDir();
    await skopeoPullViaMirror(peer.host, images.docker.ref, docker);
    const dl = images.docker.layers[0]!;
    expect((await readFile(join(docker, 'blobs', 'sha256', dl.descriptor.digest.slice(7)))).equals(dl.blob)).toBe(true);
    // The mirror passed the Docker media type through unchanged.
    const res = await fetch(`${peer.url}/v2/${images.docker.name}/manifests/v1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect(res.headers.get('content-type')).toBe('application/vnd.docker.distribution.manifest.v2+json');
    await res.arrayBuffer();
  });

  it('containerd (ctr --hosts-dir, which sends ?ns=) pulls bit-identical content through a peer that knows the registry only by --registry', async () => {
    const nsOnly = await PollenProcess.peer(['--registry', `${UPSTREAM_HOST}=${registry.url}`]);
    peers.push(nsOnly);
    const containerd = await Containerd.start();
    try {
      await containerd.pullViaMirror(nsOnly.host, images.app.ref);
      for (const layer of images.app.layers) {
        expect((await containerd.contentGet(layer.descriptor.digest)).equals(layer.blob)).toBe(true);
      }
      await containerd.pullViaMirror(nsOnly.host, images.multi.ref, { namespace: 'multi' });
      const amd64 = images.multi.platforms.find((p) => p.manifest.platform?.architecture === 'amd64')!;
      expect((await containerd.contentGet(amd64.layers[0]!.descriptor.digest, 'multi')).equals(amd64.layers[0]!.blob)).toBe(true);
    } finally {
      await containerd.stop();
    }
  });
});

describe('one upstream fetch per blob', () => {
  it('ten concurrent clients on a cold blob cause one upstream blob GET, and all get the whole blob', async () => {
    const peer = await startPeer();
    const layer = images.app.layers[1]!;
    const before = registry.blobGets(layer.descriptor.digest).length;
    const heads = () => registry.accessLog().filter((e) => e.method === 'HEAD' && e.path.includes(layer.descriptor.digest)).length;
    const headsBefore = heads();
    const bodies = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const res = await fetch(`${peer.url}/v2/${images.app.name}/blobs/${layer.descriptor.digest}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('docker-content-digest')).toBe(layer.descriptor.digest);
        return Buffer.from(await res.arrayBuffer());
      }),
    );
    for (const b of bodies) expect(sha256(b)).toBe(layer.descriptor.digest);
    expect(registry.blobGets(layer.descriptor.digest).length - before).toBe(1);
    // Their access checks (same credential) shared one HEAD too.
    expect(heads() - headsBefore).toBe(1);
  });
});

describe('Range requests', () => {
  const cases: Array<[string, (size: number) => [number, number]]> = [
    ['bytes=0-99', () => [0, 99]],
    ['bytes=100-', (size) => [100, size - 1]],
    ['bytes=-100', (size) => [size - 100, size - 1]],
  ];

  async function check(peer: PollenProcess, state: string): Promise<void> {
    const layer = images.app.layers[2]!;
    const blob = layer.blob;
    const url = `${peer.url}/v2/${images.app.name}/blobs/${layer.descriptor.digest}`;
    const results = await Promise.all(
      cases.map(async ([range]) => {
        const res = await fetch(url, { headers: { range } });
        return { status: res.status, contentRange: res.headers.get('content-range'), body: Buffer.from(await res.arrayBuffer()) };
      }),
    );
    results.forEach((r, i) => {
      const [start, end] = cases[i]![1](blob.length);
      expect(r.status, `${state} ${cases[i]![0]}`).toBe(206);
      expect(r.contentRange).toBe(`bytes ${start}-${end}/${blob.length}`);
      expect(r.body.equals(blob.subarray(start, end + 1))).toBe(true);
    });
    const past = await fetch(url, { headers: { range: `bytes=${blob.length}-` } });
    expect(past.status, `${state} past the end`).toBe(416);
    expect(((await past.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('RANGE_INVALID');
  }

  it('are honoured on a cold blob (all at once, while it downloads) and on the cached blob', async () => {
    const peer = await startPeer();
    await check(peer, 'cold');
    await check(peer, 'cached');
  });
});

describe('bad input', () => {
  it('gets a clear 4xx with an OCI error body, and the daemon keeps serving', async () => {
    const peer = await startPeer();
    const probe = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(`${peer.url}${path}`, init);
      const text = await res.text();
      return { status: res.status, code: text.startsWith('{') ? (JSON.parse(text) as { errors?: Array<{ code: string }> }).errors?.[0]?.code : undefined };
    };
    expect(await probe('/v2/UPPER/case/manifests/v1')).toEqual({ status: 400, code: 'NAME_INVALID' });
    expect(await probe(`/v2/${'a'.repeat(300)}/manifests/v1`)).toEqual({ status: 400, code: 'NAME_INVALID' });
    expect(await probe('/v2/ns/app/blobs/sha256:xyz')).toEqual({ status: 400, code: 'DIGEST_INVALID' });
    expect(await probe('/v2/ns/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e')).toEqual({ status: 400, code: 'DIGEST_INVALID' });
    expect(await probe('/v2/ns/app/manifests/bad!tag')).toEqual({ status: 400, code: 'MANIFEST_INVALID' });
    expect(await probe('/v2/ns/app/tags/list')).toEqual({ status: 404, code: 'NOT_FOUND' });
    expect(await probe('/v2/ns/%E0%A4%A/blobs/x')).toMatchObject({ status: 400 });
    expect(await probe('/v2/ns/app/manifests/v1?ns=unknown.example')).toEqual({ status: 400, code: 'NAME_UNKNOWN' });
    expect(await probe('/v2/ns/app/manifests/v1?ns=bad%20host')).toMatchObject({ status: 400 });
    const oci = { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } };
    expect(await probe('/v2/ns/app/manifests/v1?unknown=1&x', oci)).toMatchObject({ status: 200 });
    expect(await probe('/v2/ns/app/manifests/nope')).toEqual({ status: 404, code: 'MANIFEST_UNKNOWN' });
    expect(await probe(`/v2/ns/app/blobs/sha256:${'0'.repeat(64)}`)).toEqual({ status: 404, code: 'BLOB_UNKNOWN' });
    expect(await probe('/v2/ns/app/manifests/v1', { method: 'PUT', body: '{}' })).toEqual({ status: 405, code: 'UNSUPPORTED' });
    expect((await probe('/v2/ns/app/manifests/v1', { headers: { 'x-huge': 'a'.repeat(64 * 1024) } })).status).toBe(431);
    // Several ranges in one header are refused on a blob that exists (registries serve one range).
    expect(await probe(`/v2/ns/app/blobs/${images.app.layers[0]!.descriptor.digest}`, { headers: { range: 'bytes=1-2,5-6' } })).toEqual({ status: 416, code: 'RANGE_INVALID' });
    // Raw garbage on the socket.
    const net = await import('node:net');
    await new Promise<void>((resolve) => {
      const s = net.connect(Number(peer.url.split(':').pop()), '127.0.0.1', () => s.end('\x00\x01GARBAGE \r\n\r\n'));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
      s.resume();
    });
    expect(await probe('/v2/')).toMatchObject({ status: 200 });
    expect(peer.exited).toBe(false);
  });
});

describe('HTTP forward proxy', () => {
  it('serves absolute-URI registry requests like mirror requests, and tunnels CONNECT', async () => {
    const curl = requireTool('curl', 'curl');
    const peer = await startPeer();
    const layer = images.app.layers[0]!;
    const dest = join(await tempDir(), 'blob');
    await execFileP(curl, ['-sSf', '-x', peer.url, '-o', dest, `${registry.url}/v2/${images.app.name}/blobs/${layer.descriptor.digest}`]);
    expect((await readFile(dest)).equals(layer.blob)).toBe(true);
    // The blob was cached by the peer: a direct mirror request is a hit with no new registry GET.
    const before = registry.blobGets(layer.descriptor.digest).length;
    const res = await fetch(`${peer.url}/v2/${images.app.name}/blobs/${layer.descriptor.digest}?ns=${registry.host}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(layer.blob)).toBe(true);
    expect(registry.blobGets(layer.descriptor.digest).length).toBe(before);
    // CONNECT (curl -p) reaches the registry through a plain tunnel.
    const { stdout } = await execFileP(curl, ['-sSf', '-p', '-x', peer.url, `${registry.url}/v2/${images.app.name}/manifests/v1`, '-H', 'accept: application/vnd.oci.image.manifest.v1+json']);
    expect(JSON.parse(stdout).layers.length).toBe(3);
  });
});

