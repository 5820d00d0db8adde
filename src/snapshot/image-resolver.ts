// From an image reference to its manifest and config: an index picks the wanted platform, the
// config blob is fetched with a size cap and verified against its digest.
import { sha256Digest, type Digest } from '../digest.ts';
import { PollenError } from '../errors.ts';
import { readBodyCapped } from '../oci/body.ts';
import { isIndexMediaType, parseImageConfig, parseIndex, parseManifest, selectPlatform, type ImageConfig, type ImageManifest, type Platform } from '../oci/image.ts';
import type { RegistryClient } from '../oci/registry-client.ts';

export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

export interface ResolvedImage {
  readonly manifestDigest: Digest;
  readonly manifest: ImageManifest;
  readonly config: ImageConfig;
}

export async function resolveImage(client: RegistryClient, name: string, reference: string, platform: Platform, signal?: AbortSignal): Promise<ResolvedImage> {
  let m = await client.getManifest(name, reference, { signal });
  const looksLikeIndex = (): boolean => isIndexMediaType(m.mediaType) || (!m.mediaType && m.bytes.includes('"manifests"'));
  if (looksLikeIndex()) {
    const pick = selectPlatform(parseIndex(m.bytes), platform);
    m = await client.getManifest(name, pick.digest, { signal });
    if (isIndexMediaType(m.mediaType)) throw new PollenError('ERR_INVALID_MANIFEST', `index entry ${pick.digest} is itself an index`);
  }
  const manifest = parseManifest(m.bytes);
  const res = await client.getBlob(name, manifest.config.digest, { signal });
  const bytes = await readBodyCapped(res.body, MAX_CONFIG_BYTES, `image config ${manifest.config.digest}`);
  const actual = sha256Digest(bytes);
  if (actual !== manifest.config.digest) {
    throw new PollenError('ERR_DIGEST_MISMATCH', `image config hashed to ${actual}, expected ${manifest.config.digest}`, { expected: manifest.config.digest, actual });
  }
  const config = parseImageConfig(bytes);
  if (config.diffIds.length !== manifest.layers.length) {
    throw new PollenError('ERR_INVALID_MANIFEST', `manifest has ${manifest.layers.length} layers but the config lists ${config.diffIds.length} diffIDs`);
  }
  return { manifestDigest: m.digest, manifest, config };
}
