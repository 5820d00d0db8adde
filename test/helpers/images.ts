// Test images generated in code, deterministically: seeded pseudo-random file contents, tars built
// with tar-stream, written as an OCI image layout that skopeo pushes to a real registry.
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { MediaType } from '../../src/oci/media-types.ts';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

/** Deterministic pseudo-random bytes (AES-256-CTR keystream of the seed): fast enough for 100s of MiB. */
export function seededBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const out = Buffer.alloc(size);
  const chunk = 1 << 20;
  for (let i = 0; i < size; i += chunk) {
    const n = Math.min(chunk, size - i);
    cipher.update(Buffer.alloc(n)).copy(out, i);
  }
  return out;
}

export type TarEntry =
  | { type: 'file'; name: string; content: Buffer | string; mode?: number; uid?: number; gid?: number; mtime?: Date; pax?: Record<string, string> }
  | { type: 'directory'; name: string; mode?: number; uid?: number; gid?: number; mtime?: Date; pax?: Record<string, string> }
  | { type: 'symlink'; name: string; linkname: string; mtime?: Date; uid?: number; gid?: number }
  | { type: 'link'; name: string; linkname: string; mtime?: Date }
  | { type: 'character-device' | 'block-device'; name: string; devmajor: number; devminor: number; mode?: number; mtime?: Date }
  | { type: 'fifo'; name: string; mode?: number; mtime?: Date };

const EPOCH = new Date('2024-01-01T00:00:00Z');

/** Builds an uncompressed tar of the entries, in order. */
export async function buildTar(entries: readonly TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  for (const e of entries) {
    const header: Record<string, unknown> = { name: e.name, type: e.type, mtime: e.mtime ?? EPOCH };
    if ('mode' in e && e.mode !== undefined) header.mode = e.mode;
    if ('uid' in e && e.uid !== undefined) header.uid = e.uid;
    if ('gid' in e && e.gid !== undefined) header.gid = e.gid;
    if ('linkname' in e) header.linkname = e.linkname;
    if ('devmajor' in e) Object.assign(header, { devmajor: e.devmajor, devminor: e.devminor });
    if ('pax' in e && e.pax) header.pax = e.pax;
    if (e.type === 'file') {
      const content = typeof e.content === 'string' ? Buffer.from(e.content) : e.content;
      header.size = content.length;
      await new Promise<void>((resolve, reject) => p.entry(header as never, content, (err) => (err ? reject(err) : resolve())));
    } else {
      await new Promise<void>((resolve, reject) => p.entry(header as never, (err) => (err ? reject(err) : resolve())));
    }
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function sha256(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export type Compression = 'none' | 'gzip';

export interface BuiltLayer {
  descriptor: Descriptor;
  diffId: string;
  blob: Buffer;
}

/**
 * A layer blob from a tar. `gzipLevel` 0 stores without compressing (fast, for large random content).
 * Note: skopeo compresses uncompressed layers when it pushes to a registry, so layers meant to keep
 * their digest through a push must be gzip.
 */
export function makeLayer(tar: Buffer, compression: Compression, docker = false, gzipLevel = 1): BuiltLayer {
  const blob = compression === 'gzip' ? gzipSync(tar, { level: gzipLevel }) : tar;
  const mediaType = docker ? MediaType.DockerLayerGzip : compression === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayerTar;
  return { descriptor: { mediaType, digest: sha256(blob), size: blob.length }, diffId: sha256(tar), blob };
}

export interface ImageConfigInput {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: Record<string, unknown>;
}

/** Writes an OCI image layout: blobs, and an index.json naming the given top-level manifests by tag. */
export class OciLayout {
  private readonly blobs = new Map<string, Buffer>();
  private readonly refs: Descriptor[] = [];

  constructor(readonly dir: string) {}

  addBlob(data: Buffer, mediaType: string): Descriptor {
    const digest = sha256(data);
    this.blobs.set(digest, data);
    return { mediaType, digest, size: data.length };
  }

  /** Adds an image (config + manifest) and returns the manifest's descriptor. */
  addImage(layers: readonly BuiltLayer[], cfg: ImageConfigInput = {}, docker = false): Descriptor {
    for (const l of layers) this.blobs.set(l.descriptor.digest, l.blob);
    const config = {
      architecture: cfg.architecture ?? 'amd64',
      os: cfg.os ?? 'linux',
      ...(cfg.variant ? { variant: cfg.variant } : {}),
      created: EPOCH.toISOString(),
      config: cfg.config ?? {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created: EPOCH.toISOString(), created_by: 'pollen test image' })),
    };
    const configDesc = this.addBlob(Buffer.from(JSON.stringify(config)), docker ? MediaType.DockerConfig : MediaType.OciConfig);
    const manifest = {
      schemaVersion: 2,
      mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
      config: configDesc,
      layers: layers.map((l) => l.descriptor),
    };
    const desc = this.addBlob(Buffer.from(JSON.stringify(manifest)), manifest.mediaType);
    return { ...desc, platform: { os: config.os, architecture: config.architecture, ...(cfg.variant ? { variant: cfg.variant } : {}) } };
  }

  addIndex(manifests: readonly Descriptor[]): Descriptor {
    const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
    return this.addBlob(Buffer.from(JSON.stringify(index)), MediaType.OciIndex);
  }

  tag(desc: Descriptor, tag: string): void {
    const { platform: _platform, ...rest } = desc;
    this.refs.push({ ...rest, annotations: { 'org.opencontainers.image.ref.name': tag } });
  }

  async save(): Promise<void> {
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    for (const [digest, data] of this.blobs) await writeFile(join(this.dir, 'blobs', 'sha256', digest.slice(7)), data);
    await writeFile(join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: this.refs }));
  }
}

/** A tar layer holding one file of seeded random content (for sizes that matter, not for unpack rules). */
export async function randomFileLayer(seed: string, bytes: number, compression: Compression = 'gzip'): Promise<BuiltLayer> {
  const tar = await buildTar([
    { type: 'directory', name: 'data/' },
    { type: 'file', name: `data/${seed}.bin`, content: seededBytes(seed, bytes), mode: 0o644 },
  ]);
  // Random content does not compress: gzip level 0 keeps generation fast.
  return makeLayer(tar, compression, false, 0);
}
