// The standard images the mirror and P2P tests push to a real registry: several layers (one large),
// an OCI index with two platforms, and a Docker schema 2 image. Deterministic; built once per call.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTar, makeLayer, OciLayout, randomFileLayer, type BuiltLayer, type Descriptor } from './images.ts';
import type { TestRegistry } from './registry.ts';

export interface PushedImage {
  /** `name:tag` in the registry. */
  readonly ref: string;
  readonly name: string;
  readonly manifest: Descriptor;
  readonly layers: readonly BuiltLayer[];
}

export interface StandardImages {
  readonly app: PushedImage;
  readonly multi: { ref: string; name: string; index: Descriptor; platforms: PushedImage[] };
  readonly docker: PushedImage;
  /** Every blob pushed, by digest (the source of truth for bit-identity checks). */
  readonly blobs: ReadonlyMap<string, Buffer>;
}

export async function pushStandardImages(registry: TestRegistry, options: { largeLayerBytes?: number } = {}): Promise<StandardImages> {
  const dir = await mkdtemp(join(tmpdir(), 'pollen-images-'));
  const blobs = new Map<string, Buffer>();
  const keep = (layers: BuiltLayer[]) => layers.forEach((l) => blobs.set(l.descriptor.digest, l.blob));
  try {
    // ns/app:v1 — three layers: a small gzip one with files, a large uncompressed one, a medium gzip one.
    const appLayers = [
      makeLayer(await buildTar([{ type: 'directory', name: 'etc/' }, { type: 'file', name: 'etc/app.conf', content: 'answer = 42\n' }]), 'gzip'),
      await randomFileLayer('large', options.largeLayerBytes ?? 64 * 1024 * 1024),
      await randomFileLayer('medium', 3 * 1024 * 1024 + 17, 'gzip'),
    ];
    keep(appLayers);
    const appLayout = new OciLayout(join(dir, 'app'));
    const appManifest = appLayout.addImage(appLayers, { config: { Cmd: ['/bin/sh'] } });
    appLayout.tag(appManifest, 'v1');
    await appLayout.save();
    await registry.push(appLayout.dir, 'v1', 'ns/app:v1');

    // ns/multi:v1 — an OCI index for linux/amd64 and linux/arm64.
    const multiLayout = new OciLayout(join(dir, 'multi'));
    const platforms: PushedImage[] = [];
    for (const arch of ['amd64', 'arm64']) {
      const layers = [await randomFileLayer(`multi-${arch}`, 256 * 1024, 'gzip')];
      keep(layers);
      const m = multiLayout.addImage(layers, { architecture: arch, os: 'linux' });
      platforms.push({ ref: 'ns/multi:v1', name: 'ns/multi', manifest: m, layers });
    }
    const index = multiLayout.addIndex(platforms.map((p) => p.manifest));
    multiLayout.tag(index, 'v1');
    await multiLayout.save();
    await registry.push(multiLayout.dir, 'v1', 'ns/multi:v1', { all: true });

    // ns/docker:v1 — Docker image manifest v2 schema 2 (skopeo converts on push).
    const dockerLayers = [await randomFileLayer('docker', 512 * 1024, 'gzip')];
    keep(dockerLayers);
    const dockerLayout = new OciLayout(join(dir, 'docker'));
    const dockerManifest = dockerLayout.addImage(dockerLayers);
    dockerLayout.tag(dockerManifest, 'v1');
    await dockerLayout.save();
    await registry.push(dockerLayout.dir, 'v1', 'ns/docker:v1', { format: 'v2s2' });

    return {
      app: { ref: 'ns/app:v1', name: 'ns/app', manifest: appManifest, layers: appLayers },
      multi: { ref: 'ns/multi:v1', name: 'ns/multi', index, platforms },
      docker: { ref: 'ns/docker:v1', name: 'ns/docker', manifest: dockerManifest, layers: dockerLayers },
      blobs,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
