// Image manifests, indexes and configs (OCI image spec and Docker schema 2): parsing with clear
// errors, platform selection from an index, and chainIDs (the identity of a stack of layers).
import { createHash } from 'node:crypto';
import { parseDigest, type Digest } from '../digest.ts';
import { PollenError } from '../errors.ts';
import { INDEX_MEDIA_TYPES, MediaType } from './media-types.ts';

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export interface ImageDescriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly platform?: Platform;
}

export interface ImageManifest {
  readonly config: ImageDescriptor;
  readonly layers: readonly ImageDescriptor[];
}

export interface ImageConfig {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
  readonly config: {
    readonly User?: string;
    readonly Env?: readonly string[];
    readonly Entrypoint?: readonly string[] | null;
    readonly Cmd?: readonly string[] | null;
    readonly WorkingDir?: string;
    readonly Labels?: Readonly<Record<string, string>>;
    readonly StopSignal?: string;
  };
  readonly diffIds: readonly Digest[];
}

function json(bytes: Buffer, what: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(bytes.toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new PollenError('ERR_INVALID_MANIFEST', `${what} is not a JSON object`);
}

function descriptor(v: unknown, what: string): ImageDescriptor {
  const d = v as Record<string, unknown> | null;
  if (!d || typeof d !== 'object' || typeof d.mediaType !== 'string' || typeof d.digest !== 'string' || typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new PollenError('ERR_INVALID_MANIFEST', `${what} is not a valid descriptor`);
  }
  const p = d.platform as Record<string, unknown> | undefined;
  const platform = p && typeof p.os === 'string' && typeof p.architecture === 'string'
    ? { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' ? { variant: p.variant } : {}) }
    : undefined;
  const urls = Array.isArray(d.urls) ? d.urls.filter((u): u is string => typeof u === 'string') : undefined;
  return { mediaType: d.mediaType, digest: parseDigest(d.digest), size: d.size, ...(urls ? { urls } : {}), ...(platform ? { platform } : {}) };
}

export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_MEDIA_TYPES.includes(mediaType);
}

export function parseIndex(bytes: Buffer): ImageDescriptor[] {
  const v = json(bytes, 'image index');
  if (!Array.isArray(v.manifests)) throw new PollenError('ERR_INVALID_MANIFEST', 'image index has no manifests array');
  return v.manifests.map((m, i) => descriptor(m, `index entry ${i}`));
}

export function parseManifest(bytes: Buffer): ImageManifest {
  const v = json(bytes, 'image manifest');
  if (v.schemaVersion !== 2) throw new PollenError('ERR_INVALID_MANIFEST', `unsupported manifest schemaVersion ${String(v.schemaVersion)}`);
  if (!Array.isArray(v.layers)) throw new PollenError('ERR_INVALID_MANIFEST', 'image manifest has no layers array');
  return { config: descriptor(v.config, 'manifest config'), layers: v.layers.map((l, i) => descriptor(l, `layer ${i}`)) };
}

const strings = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? (v as string[]) : undefined);

export function parseImageConfig(bytes: Buffer): ImageConfig {
  const v = json(bytes, 'image config');
  const rootfs = v.rootfs as { diff_ids?: unknown } | undefined;
  const diffIds = strings(rootfs?.diff_ids);
  if (!diffIds) throw new PollenError('ERR_INVALID_MANIFEST', 'image config has no rootfs.diff_ids');
  const c = (v.config ?? {}) as Record<string, unknown>;
  const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);
  const labels = c.Labels && typeof c.Labels === 'object' ? (c.Labels as Record<string, string>) : undefined;
  return {
    os: str(v.os) ?? 'linux',
    architecture: str(v.architecture) ?? '',
    ...(str(v.variant) ? { variant: str(v.variant)! } : {}),
    config: {
      User: str(c.User),
      Env: strings(c.Env),
      Entrypoint: strings(c.Entrypoint),
      Cmd: strings(c.Cmd),
      WorkingDir: str(c.WorkingDir),
      Labels: labels,
      StopSignal: str(c.StopSignal),
    },
    diffIds: diffIds.map((d) => parseDigest(d)),
  };
}

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** This host's platform, in Go's names as image indexes use them. */
export function hostPlatform(): Platform {
  return { os: process.platform === 'win32' ? 'windows' : process.platform, architecture: GO_ARCH[process.arch] ?? process.arch };
}

export function parsePlatform(s: string): Platform {
  const [os, architecture, variant, extra] = s.split('/');
  if (!os || !architecture || extra !== undefined) throw new PollenError('ERR_INVALID_REFERENCE', `invalid platform ${JSON.stringify(s)}: expected os/arch[/variant]`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** The index entry for a platform: exact variant first, then any variant when none was asked for. */
export function selectPlatform(entries: readonly ImageDescriptor[], want: Platform): ImageDescriptor {
  const ok = entries.filter((e) => e.platform && e.platform.os === want.os && e.platform.architecture === want.architecture);
  const exact = ok.find((e) => (e.platform?.variant ?? '') === (want.variant ?? ''));
  const pick = exact ?? (want.variant ? undefined : ok[0]);
  if (!pick) {
    const have = entries.map((e) => (e.platform ? formatPlatform(e.platform) : '?')).join(', ');
    throw new PollenError('ERR_MANIFEST_UNKNOWN', `image has no manifest for platform ${formatPlatform(want)} (it has: ${have || 'none'})`, { platform: formatPlatform(want) });
  }
  return pick;
}

/** chainID(L0) = diffID(L0); chainID(L0..n) = sha256(chainID(L0..n-1) + " " + diffID(Ln)). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : (`sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}` as Digest));
  }
  return out;
}

export type LayerCompression = 'none' | 'gzip' | 'zstd';

const LAYER_TYPES: Record<string, { compression: LayerCompression; foreign: boolean }> = {
  [MediaType.OciLayerTar]: { compression: 'none', foreign: false },
  [MediaType.OciLayerGzip]: { compression: 'gzip', foreign: false },
  [MediaType.OciLayerZstd]: { compression: 'zstd', foreign: false },
  [MediaType.OciLayerNondistTar]: { compression: 'none', foreign: true },
  [MediaType.OciLayerNondistGzip]: { compression: 'gzip', foreign: true },
  [MediaType.OciLayerNondistZstd]: { compression: 'zstd', foreign: true },
  [MediaType.DockerLayerGzip]: { compression: 'gzip', foreign: false },
  [MediaType.DockerLayerForeignGzip]: { compression: 'gzip', foreign: true },
  'application/vnd.docker.image.rootfs.diff.tar': { compression: 'none', foreign: false },
};

/** How a layer of this media type is compressed and whether it is foreign (non-distributable). */
export function layerKind(mediaType: string): { compression: LayerCompression; foreign: boolean } {
  const k = LAYER_TYPES[mediaType];
  if (!k) throw new PollenError('ERR_INVALID_MANIFEST', `unsupported layer media type ${mediaType}`, { mediaType });
  return k;
}
