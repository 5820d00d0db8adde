// Several peers (the real P2P parts, in process) pulling one layer through a real supernode from a
// real registry, driven through the BlobDownloader seam.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../../src/digest.ts';
import { OciLayout, randomFileLayer, type BuiltLayer } from '../helpers/images.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { startPeer, startSupernode, type TestPeer } from '../helpers/p2p-swarm.ts';

const LAYER_BYTES = 40 << 20;

describe('P2P swarm over a real registry', () => {
  let registry: TestRegistry;
  let layer: BuiltLayer;
  let layoutDir: string;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    registry = await TestRegistry.start();
    layoutDir = await mkdtemp(join(tmpdir(), 'pollen-layout-'));
    const layout = new OciLayout(layoutDir);
    layer = await randomFileLayer('swarm', LAYER_BYTES, 'gzip');
    layout.tag(layout.addImage([layer]), 'v1');
    await layout.save();
    await registry.push(layoutDir, 'v1', 'test/swarm:v1');
  });

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await registry?.stop();
    await rm(layoutDir, { recursive: true, force: true });
  });

  async function peers(n: number, urls: string[], options: Parameters<typeof startPeer>[1] = {}): Promise<TestPeer[]> {
    const out = await Promise.all(Array.from({ length: n }, () => startPeer(urls, options)));
    for (const p of out) cleanups.push(() => p.close());
    return out;
  }

  it('five peers pulling at once get identical blobs, the registry sends it about once, and most bytes come from peers', async () => {
    const { node } = await startSupernode();
    cleanups.push(() => node.close());
    const swarm = await peers(5, [node.url]);
    const digest = layer.descriptor.digest as Digest;
    const before = registry.blobBytesSent();
    const got = await Promise.all(swarm.map((p) => p.pull(registry.url, 'test/swarm', digest)));
    expect(new Set(got)).toEqual(new Set([digest]));
    for (const p of swarm) expect((await p.store.stat(digest))?.size).toBe(layer.blob.length);
    const registryBytes = registry.blobBytesSent() - before;
    expect(registryBytes).toBeLessThanOrEqual(1.1 * layer.blob.length);
    const fromPeers = swarm.reduce((n, p) => n + p.agent.totals.peer, 0);
    const fromSeed = swarm.reduce((n, p) => n + p.agent.totals.seed, 0);
    const fromUpstream = swarm.reduce((n, p) => n + p.agent.totals.upstream, 0);
    expect(fromUpstream).toBe(0);
    expect(fromPeers).toBeGreaterThan(fromSeed);

    // A peer that arrives after the others finished gets everything from peers.
    const [late] = await peers(1, [node.url]);
    const lateBefore = registry.blobBytesSent();
    expect(await late!.pull(registry.url, 'test/swarm', digest)).toBe(digest);
    expect(registry.blobBytesSent() - lateBefore).toBe(0);
    expect(late!.agent.totals).toEqual({ peer: layer.blob.length, seed: 0, upstream: 0 });
  }, 180_000);
});
