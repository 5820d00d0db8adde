// The image the fan-out benchmark distributes: S MiB of seeded random content in several layers
// (uncompressed tars, so the bytes on the wire are S whatever the system compresses), written as an
// OCI layout with the generators the tests use (test/helpers/images.ts).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OciLayout, randomFileLayer } from '../../test/helpers/images.ts';
import { LAYER_SHARES } from './layers.ts';

const MIB = 1024 * 1024;

export interface BlobInfo {
  digest: string;
  size: number;
}

export interface BenchImage {
  layoutDir: string;
  repo: string;
  tag: string;
  sizeMiB: number;
  /** Config and layer blobs (what every host must fetch), and their total size in bytes. */
  blobs: readonly BlobInfo[];
  totalBytes: number;
}

/** `name`: another image of the same size with other bytes (the warm-up image is 'warm'). */
export async function buildBenchImage(dir: string, sizeMiB: number, name = 'fanout'): Promise<BenchImage> {
  if (!(sizeMiB >= 1)) throw new Error(`image size must be at least 1 MiB, got ${sizeMiB}`);
  const layoutDir = join(dir, `${name}-${sizeMiB}mib`);
  const layout = new OciLayout(layoutDir);
  const layers = [];
  for (const [i, share] of LAYER_SHARES.entries()) {
    layers.push(await randomFileLayer(`${name}-${sizeMiB}-${i}`, Math.max(1024, Math.floor(sizeMiB * MIB * share)), 'none'));
  }
  const tag = `s${sizeMiB}`;
  const manifest = layout.addImage(layers, { config: { Cmd: ['/bin/true'] } });
  layout.tag(manifest, tag);
  await layout.save();
  const manifestJson = JSON.parse(await readFile(join(layoutDir, 'blobs', 'sha256', manifest.digest.slice(7)), 'utf8')) as {
    config: BlobInfo;
    layers: BlobInfo[];
  };
  const blobs = [manifestJson.config, ...manifestJson.layers].map((b) => ({ digest: b.digest, size: b.size }));
  return { layoutDir, repo: `bench/${name}`, tag, sizeMiB, blobs, totalBytes: blobs.reduce((n, b) => n + b.size, 0) };
}

export function blobPath(image: BenchImage, digest: string): string {
  return join(image.layoutDir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
}
