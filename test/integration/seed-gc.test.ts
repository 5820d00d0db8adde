// The supernode's seed store under a quota, with real processes: a supernode with a small
// --seed-disk-quota and peers pulling (skopeo through the peer's mirror, bytes over P2P from the
// seed) images whose sum passes it. The seed evicts its least recently used blobs, its store never
// passes the quota by more than the blob being fetched, and an evicted blob comes back: the next
// peer that needs it gets it, the seed fetching it from the registry again.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skopeoPullViaMirror } from '../helpers/clients.ts';
import { pushRandomImage, startP2pPeer, startSupernodeProcess, type ImageFixture } from '../helpers/p2p-cluster.ts';
import type { PollenProcess } from '../helpers/pollen.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { storeBytes, storeHasBlob } from '../helpers/store-files.ts';

const MiB = 1024 * 1024;
const QUOTA = 8 * MiB;
const LAYER = 3 * MiB;

const seedBytes = (data: string): Promise<number> => storeBytes(data, 'seed');
const seedHas = (data: string, digest: string): boolean => storeHasBlob(data, 'seed', digest);

describe('the seed store under --seed-disk-quota (real registry, supernode and peers)', () => {
  let registry: TestRegistry;
  let supernode: PollenProcess;
  let work: string;
  const peers: PollenProcess[] = [];
  const images: ImageFixture[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'pollen-seed-gc-'));
    registry = await TestRegistry.start();
    for (const name of ['a', 'b', 'c']) images.push(await pushRandomImage(registry, `seedgc/${name}`, [LAYER]));
    supernode = await startSupernodeProcess(registry, ['--seed-disk-quota', String(QUOTA)]);
  }, 120_000);

  afterAll(async () => {
    for (const p of peers) await p.stop();
    await supernode?.stop();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const pullThroughNewPeer = async (image: ImageFixture): Promise<void> => {
    const peer = await startP2pPeer(registry, supernode.url);
    peers.push(peer);
    await skopeoPullViaMirror(new URL(peer.url).host, image.ref, join(work, `${peers.length}`));
  };

  it('evicts the least recently used seed blobs, stays within the quota plus the blob in flight, and fetches an evicted blob again', async () => {
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, await seedBytes(supernode.dataDir));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      for (const image of images) await pullThroughNewPeer(image);
    } finally {
      sampling = false;
      await sampler;
    }
    const layerOf = (i: number): string => images[i]!.layers[0]!.descriptor.digest;
    // Three 3 MiB layers do not fit in 8 MiB: the oldest went, the newest stayed.
    expect(seedHas(supernode.dataDir, layerOf(0))).toBe(false);
    expect(seedHas(supernode.dataDir, layerOf(2))).toBe(true);
    expect(await seedBytes(supernode.dataDir)).toBeLessThanOrEqual(QUOTA);
    expect(most).toBeLessThanOrEqual(QUOTA + LAYER + MiB);
    expect(registry.blobGets(layerOf(0))).toHaveLength(1);

    // A fresh peer needs the evicted layer: the seed fetches it from the registry again.
    await pullThroughNewPeer(images[0]!);
    expect(registry.blobGets(layerOf(0)).length).toBeGreaterThanOrEqual(2);
    expect(seedHas(supernode.dataDir, layerOf(0))).toBe(true);
    expect(await seedBytes(supernode.dataDir)).toBeLessThanOrEqual(QUOTA);
  }, 240_000);
});
