import { describe, expect, it } from 'vitest';
import { isPollenError } from '../../../../src/errors.ts';
import { chainIds, layerKind, parseImageConfig, parseManifest, parsePlatform, selectPlatform, type ImageDescriptor } from '../../../../src/oci/image.ts';
import { MediaType } from '../../../../src/oci/media-types.ts';
import { sha256Digest, type Digest } from '../../../../src/digest.ts';

const d = (s: string): Digest => sha256Digest(s);
const entry = (os: string, architecture: string, variant?: string): ImageDescriptor => ({
  mediaType: MediaType.OciManifest,
  digest: d(`${os}/${architecture}/${variant ?? ''}`),
  size: 1,
  platform: { os, architecture, ...(variant ? { variant } : {}) },
});

describe('image parsing', () => {
  it('chainIDs follow the image spec: the first is the diffID, then sha256 of "parent diffID"', () => {
    const [a, b] = [d('a'), d('b')];
    const ids = chainIds([a, b]);
    expect(ids[0]).toBe(a);
    expect(ids[1]).toBe(sha256Digest(`${a} ${b}`));
  });

  it('selects the exact platform variant from an index, or any variant when none is asked for', () => {
    const entries = [entry('linux', 'arm', 'v6'), entry('linux', 'arm', 'v7'), entry('linux', 'amd64')];
    expect(selectPlatform(entries, parsePlatform('linux/arm/v7')).digest).toBe(entries[1]!.digest);
    expect(selectPlatform(entries, parsePlatform('linux/amd64')).digest).toBe(entries[2]!.digest);
    expect(selectPlatform(entries, parsePlatform('linux/arm')).digest).toBe(entries[0]!.digest);
  });

  it('a platform the index does not have is a not-found error listing what it has', () => {
    const err = (() => { try { selectPlatform([entry('linux', 'amd64')], parsePlatform('linux/s390x')); } catch (e) { return e; } })();
    expect(isPollenError(err, 'ERR_MANIFEST_UNKNOWN')).toBe(true);
    expect((err as Error).message).toContain('linux/amd64');
  });

  it('refuses malformed platforms, manifests and configs with clear errors', () => {
    expect(() => parsePlatform('linux')).toThrow(/os\/arch/);
    expect(() => parseManifest(Buffer.from('{"schemaVersion":2}'))).toThrow(/layers/);
    expect(() => parseManifest(Buffer.from('nope'))).toThrow(/JSON/);
    expect(() => parseImageConfig(Buffer.from('{"config":{}}'))).toThrow(/diff_ids/);
  });

  it('knows layer compressions and which layers are foreign', () => {
    expect(layerKind(MediaType.DockerLayerGzip)).toEqual({ compression: 'gzip', foreign: false });
    expect(layerKind(MediaType.OciLayerZstd)).toEqual({ compression: 'zstd', foreign: false });
    expect(layerKind(MediaType.DockerLayerForeignGzip).foreign).toBe(true);
    expect(() => layerKind('application/x-unknown')).toThrow(/unsupported layer media type/);
  });
});
