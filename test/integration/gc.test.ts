// Disk quota and garbage collection of a real peer against a real registry: images pulled with skopeo
// whose sum passes --disk-quota; the least recently used blobs go, the store never passes the quota
// by more than one blob in flight, a blob that cannot fit is refused with an OCI error while the
// peer keeps serving, a restart keeps the accounting and LRU order, and `pollen gc` reports removals.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CollectReport } from '../../src/store/collector.ts';
import { skopeoPullViaMirror, UPSTREAM_HOST } from '../helpers/clients.ts';
import { OciLayout, randomFileLayer, sha256, type BuiltLayer } from '../helpers/images.ts';
import { POLLEN_BIN, PollenProcess } from '../helpers/pollen.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { storeBytes, storeHasBlob } from '../helpers/store-files.ts';
import { execFileP } from '../helpers/tools.ts';

const MiB = 1024 * 1024;
const QUOTA = 8 * MiB;
const LAYER = 3 * MiB;

interface Image {
  readonly ref: string;
  readonly name: string;
  readonly layer: BuiltLayer;
}

async function pushImage(registry: TestRegistry, dir: string, name: string, bytes: number): Promise<Image> {
  // gzip (level 0): skopeo would compress an uncompressed layer on push, changing its digest.
  const layer = await randomFileLayer(name, bytes, 'gzip');
  const layout = new OciLayout(join(dir, name));
  layout.tag(layout.addImage([layer], { config: { Cmd: [`/${name}`] } }), 'v1');
  await layout.save();
  await registry.push(layout.dir, 'v1', `gc/${name}:v1`);
  return { ref: `gc/${name}:v1`, name: `gc/${name}`, layer };
}

const hasBlob = (data: string, digest: string): boolean => storeHasBlob(data, 'content', digest);

async function pollenGc(args: string[]): Promise<CollectReport> {
  const { stdout } = await execFileP(process.execPath, [POLLEN_BIN, 'gc', '--json', ...args], { timeout: 60_000 });
  return JSON.parse(stdout) as CollectReport;
}

describe('disk quota and garbage collection (real registry, real peer, skopeo)', () => {
  let registry: TestRegistry;
  let work: string;
  let data: string;
  let images: Record<'a' | 'b' | 'c' | 'big', Image>;
  const peers: PollenProcess[] = [];
  const startPeer = async (extra: string[]): Promise<PollenProcess> => {
    const p = await PollenProcess.peer(['--upstream', registry.url, '--registry', `${UPSTREAM_HOST}=${registry.url}`, ...extra], { dataDir: data });
    peers.push(p);
    return p;
  };
  const pull = async (peer: PollenProcess, image: Image): Promise<void> => {
    const dest = await mkdtemp(join(work, 'pulled-'));
    await skopeoPullViaMirror(peer.host, image.ref, dest);
    await rm(dest, { recursive: true, force: true });
  };

  beforeAll(async () => {
    registry = await TestRegistry.start();
    work = await mkdtemp(join(tmpdir(), 'pollen-gc-'));
    data = join(work, 'peer');
    images = {
      a: await pushImage(registry, work, 'a', LAYER),
      b: await pushImage(registry, work, 'b', LAYER),
      c: await pushImage(registry, work, 'c', LAYER),
      big: await pushImage(registry, work, 'big', 10 * MiB),
    };
  });

  afterAll(async () => {
    for (const p of peers) if (!p.exited) await p.stop({ keepData: true });
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('evicts least recently used blobs to stay under the quota, refuses what cannot fit, and keeps it all across a restart', async () => {
    const { a, b, c, big } = images;
    let peer = await startPeer(['--disk-quota', '8MiB']);
    // Sample the store's size while pulling: it may pass the quota by one blob in flight at most.
    let maxBytes = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxBytes = Math.max(maxBytes, await storeBytes(data, 'content'));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await pull(peer, a);
    await pull(peer, b);
    expect(hasBlob(data, a.layer.descriptor.digest)).toBe(true);
    await pull(peer, c); // a + b + c layers = 9 MiB > 8 MiB: a, the oldest, goes
    expect(hasBlob(data, a.layer.descriptor.digest)).toBe(false);
    expect(hasBlob(data, b.layer.descriptor.digest)).toBe(true);
    expect(hasBlob(data, c.layer.descriptor.digest)).toBe(true);
    await pull(peer, a); // a later pull of an evicted image still works; b is now the oldest
    expect(hasBlob(data, b.layer.descriptor.digest)).toBe(false);
    expect(hasBlob(data, a.layer.descriptor.digest)).toBe(true);
    sampling = false;
    await sampler;
    expect(maxBytes).toBeGreaterThan(2 * LAYER);
    expect(maxBytes).toBeLessThanOrEqual(QUOTA + LAYER + 64 * 1024);

    // A blob larger than the quota: refused up front with an OCI error naming the quota...
    const refused = await fetch(`${peer.url}/v2/${big.name}/blobs/${big.layer.descriptor.digest}`);
    expect(refused.status).toBe(507);
    const body = (await refused.json()) as { errors: Array<{ code: string; message: string; detail: { pollenCode: string } }> };
    expect(body.errors[0]?.detail.pollenCode).toBe('ERR_DISK_QUOTA');
    expect(body.errors[0]?.message).toMatch(/quota 8\.00 MiB \(--disk-quota\)/);
    // ...while the peer keeps serving what it has. Reading c makes it more recent than a (the access
    // time is written through at most once a second).
    await new Promise((r) => setTimeout(r, 1_100));
    const served = await fetch(`${peer.url}/v2/${c.name}/blobs/${c.layer.descriptor.digest}`);
    expect(served.status).toBe(200);
    expect(sha256(Buffer.from(await served.arrayBuffer()))).toBe(c.layer.descriptor.digest);
    expect(hasBlob(data, big.layer.descriptor.digest)).toBe(false);

    // Restart: the accounting is rebuilt from the store, and the LRU order from the blobs' times.
    const onDisk = await storeBytes(data, 'content');
    await peer.stop({ keepData: true });
    peer = await startPeer(['--disk-quota', '8MiB']);
    const report = await pollenGc(['--peer', peer.metricsUrl]);
    expect(report.usedBytes).toBe(onDisk);
    expect(report.quotaBytes).toBe(QUOTA);
    expect(report.removed).toEqual([]);
    await pull(peer, b); // needs room: a (pulled before c was read) goes, c stays
    expect(hasBlob(data, a.layer.descriptor.digest)).toBe(false);
    expect(hasBlob(data, c.layer.descriptor.digest)).toBe(true);
    expect(hasBlob(data, b.layer.descriptor.digest)).toBe(true);
    expect(await storeBytes(data, 'content')).toBeLessThanOrEqual(QUOTA);
    await peer.stop({ keepData: true });
  });

  it('`pollen gc` collects directly on the data directory without a peer, and through a running peer', async () => {
    const { a, b, c } = images;
    // No peer: a smaller quota given to the command evicts down to 90 % of it, oldest first.
    const direct = await pollenGc(['--direct', '--data', data, '--disk-quota', '4MiB']);
    expect(direct.removed.map((r) => r.reason)).not.toHaveLength(0);
    expect(direct.removed.every((r) => r.reason === 'quota')).toBe(true);
    expect(direct.removed.map((r) => r.digest)).toContain(c.layer.descriptor.digest);
    expect(direct.usedBytes).toBeLessThanOrEqual(0.9 * 4 * MiB);
    expect(hasBlob(data, c.layer.descriptor.digest)).toBe(false);
    expect(hasBlob(data, b.layer.descriptor.digest)).toBe(true);

    // A running peer with --blob-ttl: blobs not read for that long are reported removed.
    const peer = await startPeer(['--disk-quota', '8MiB', '--blob-ttl', '3s']);
    await pull(peer, a);
    await new Promise((r) => setTimeout(r, 3_500));
    // Collecting directly while the peer runs would race it: refused.
    await expect(pollenGc(['--direct', '--data', data])).rejects.toThrow(/a peer seems to run on/);
    const report = await pollenGc(['--peer', peer.metricsUrl]);
    expect(report.removed.filter((r) => r.reason === 'ttl').map((r) => r.digest)).toContain(a.layer.descriptor.digest);
    expect(hasBlob(data, a.layer.descriptor.digest)).toBe(false);
    expect(report.freedBytes).toBeGreaterThanOrEqual(LAYER);
    await peer.stop({ keepData: true });
  });
});
