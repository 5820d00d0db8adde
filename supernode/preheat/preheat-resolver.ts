// Resolution of a preheat target: tag → manifest or index → the platform's manifest → the config
// and layer blobs. The registry is reached through a ManifestSource (RegistryClient in production,
// a map in unit tests), with the job's credentials.
import type { Digest } from '../../src/digest.ts';
import { parseDigest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES } from '../../src/oci/media-types.ts';
import type { FetchedManifest } from '../../src/oci/registry-client.ts';

export interface ManifestSource {
  getManifest(name: string, reference: string, opts?: { signal?: AbortSignal }): Promise<FetchedManifest>;
}

export interface PreheatBlob {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
}

export interface Resolved {
  /** The digest of the platform manifest the blobs come from. */
  readonly manifest: Digest;
  /** Config first, then layers in manifest order, without duplicates. */
  readonly blobs: readonly PreheatBlob[];
}

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export const DEFAULT_PLATFORM = 'linux/amd64';

export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/i.test(p))) {
    throw new PollenError('ERR_INVALID_REQUEST', `platform must be os/arch[/variant], got ${JSON.stringify(s.slice(0, 64))}`);
  }
  return { os: parts[0]!, architecture: parts[1]!, variant: parts[2] };
}

interface DescriptorJson {
  mediaType?: string;
  digest?: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

function json(m: FetchedManifest, what: string): { mediaType?: string; manifests?: DescriptorJson[]; config?: DescriptorJson; layers?: DescriptorJson[] } {
  try {
    return JSON.parse(m.bytes.toString('utf8')) as ReturnType<typeof json>;
  } catch {
    throw new PollenError('ERR_INVALID_MANIFEST', `${what} is not JSON`);
  }
}

function blob(d: DescriptorJson | undefined, what: string): PreheatBlob {
  if (!d || typeof d.digest !== 'string' || typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new PollenError('ERR_INVALID_MANIFEST', `${what} has a descriptor without a valid digest and size`);
  }
  return { digest: parseDigest(d.digest), mediaType: d.mediaType ?? '', size: d.size };
}

function matches(p: DescriptorJson['platform'], want: Platform): boolean {
  return p?.os === want.os && p?.architecture === want.architecture && (want.variant === undefined || p?.variant === want.variant);
}

export async function resolveImage(source: ManifestSource, name: string, reference: string, platform: Platform, signal?: AbortSignal): Promise<Resolved> {
  let fetched = await source.getManifest(name, reference, { signal });
  let body = json(fetched, `manifest ${name}:${reference}`);
  const kind = fetched.mediaType || body.mediaType || '';
  if (INDEX_MEDIA_TYPES.includes(kind) || (Array.isArray(body.manifests) && !body.layers)) {
    const list = Array.isArray(body.manifests) ? body.manifests : [];
    const chosen = list.find((d) => matches(d.platform, platform));
    if (!chosen) {
      const have = list.map((d) => [d.platform?.os, d.platform?.architecture, d.platform?.variant].filter(Boolean).join('/')).join(', ') || 'none';
      const want = [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
      throw new PollenError('ERR_PLATFORM_UNKNOWN', `index ${name}:${reference} has no manifest for ${want} (it has: ${have})`, { platform: want });
    }
    const digest = blob(chosen, `index ${name}:${reference}`).digest;
    fetched = await source.getManifest(name, digest, { signal });
    body = json(fetched, `manifest ${name}@${digest}`);
    if (INDEX_MEDIA_TYPES.includes(fetched.mediaType || body.mediaType || '') || Array.isArray(body.manifests)) {
      throw new PollenError('ERR_INVALID_MANIFEST', `index ${name}:${reference} points at another index for ${platform.os}/${platform.architecture}`);
    }
  } else if (kind && !MANIFEST_MEDIA_TYPES.includes(kind)) {
    throw new PollenError('ERR_INVALID_MANIFEST', `${name}:${reference} has media type ${kind}, not an image manifest or index`);
  }
  const what = `manifest ${name}@${fetched.digest}`;
  if (!Array.isArray(body.layers)) throw new PollenError('ERR_INVALID_MANIFEST', `${what} has no layers`);
  const blobs = new Map<Digest, PreheatBlob>();
  const config = blob(body.config, what);
  blobs.set(config.digest, config);
  for (const l of body.layers) {
    const b = blob(l, what);
    if (!blobs.has(b.digest)) blobs.set(b.digest, b);
  }
  return { manifest: fetched.digest, blobs: [...blobs.values()] };
}
