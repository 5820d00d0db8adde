// A real P2P cluster as processes: `pollen supernode` and `pollen peer --supernode` on random
// loopback ports, with helpers to read what the peers logged (where each blob's bytes came from).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UPSTREAM_HOST } from './clients.ts';
import { OciLayout, randomFileLayer, type BuiltLayer } from './images.ts';
import { PollenProcess } from './pollen.ts';
import type { TestRegistry } from './registry.ts';

export const CLUSTER_SECRET = 'pollen-test-secret';

export interface ImageFixture {
  readonly ref: string;
  readonly layers: readonly BuiltLayer[];
  /** Bytes of every blob of the image (layers + config + manifest). */
  readonly size: number;
}

/** Pushes a deterministic image of random gzip layers of the given sizes. */
export async function pushRandomImage(registry: TestRegistry, name: string, layerBytes: readonly number[]): Promise<ImageFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'pollen-img-'));
  try {
    const layers: BuiltLayer[] = [];
    for (const [i, n] of layerBytes.entries()) layers.push(await randomFileLayer(`${name}-${i}`, n, 'gzip'));
    const layout = new OciLayout(dir);
    const manifest = layout.addImage(layers);
    layout.tag(manifest, 'v1');
    await layout.save();
    await registry.push(dir, 'v1', `${name}:v1`);
    const size = layers.reduce((n, l) => n + l.blob.length, 0);
    return { ref: `${name}:v1`, layers, size };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `pollen supernode` whose seed reaches `registry`, by its own HOST:PORT and as UPSTREAM_HOST (as the peers name it). */
export function startSupernodeProcess(registry: TestRegistry, args: string[] = [], options: { dataDir?: string; port?: number } = {}): Promise<PollenProcess> {
  return PollenProcess.spawn('supernode', ['--secret', CLUSTER_SECRET, '--upstream', registry.url, '--registry', `${UPSTREAM_HOST}=${registry.url}`, ...args], options);
}

export function startP2pPeer(registry: TestRegistry, supernodeUrl: string, args: string[] = [], options: { dataDir?: string } = {}): Promise<PollenProcess> {
  return PollenProcess.peer(
    ['--upstream', registry.url, '--registry', `${UPSTREAM_HOST}=${registry.url}`, '--supernode', supernodeUrl, '--secret', CLUSTER_SECRET, '--wire', '127.0.0.1:0', ...args],
    options,
  );
}

export interface BlobSources {
  peer: number;
  seed: number;
  upstream: number;
}

/** Sums the `from` counters of a peer's "blob committed" log lines (of one blob, when given). */
export function committedSources(output: string, digest?: string): BlobSources {
  const total: BlobSources = { peer: 0, seed: 0, upstream: 0 };
  for (const line of output.split('\n')) {
    if (!line.includes('"blob committed"') || (digest && !line.includes(digest))) continue;
    try {
      const from = (JSON.parse(line) as { from?: Partial<BlobSources> }).from ?? {};
      total.peer += from.peer ?? 0;
      total.seed += from.seed ?? 0;
      total.upstream += from.upstream ?? 0;
    } catch {
      // not a JSON log line
    }
  }
  return total;
}

/** The wire port a peer logged at start. */
export function wirePort(output: string): number {
  const m = /"port":(\d+)[^\n]*"msg":"wire listening"/.exec(output);
  if (!m) throw new Error('peer did not log its wire port');
  return Number(m[1]);
}
