// `pollen pull REF --bundle DIR`: resolve the image, download its missing layers (several at once,
// each into a PartialBlob on disk) while unpacking them in order as their bytes arrive, each into
// a snapshot keyed by its chainID on top of its parent, the diffID checked while streaming; then
// copy the top snapshot into the bundle's rootfs and write config.json.
import type { Digest } from '../digest.ts';
import { PollenError, toPollenError } from '../errors.ts';
import type { FsContentStore } from '../fs-content-store.ts';
import { chainIds, layerKind, type ImageDescriptor, type Platform } from '../oci/image.ts';
import type { RegistryClient } from '../oci/registry-client.ts';
import { PartialBlob } from '../partial-blob.ts';
import { applyLayer, type ApplyWarning } from './apply-layer.ts';
import { writeBundle, type BundleOptions } from './bundle-writer.ts';
import { decompress } from './decompress.ts';
import { resolveImage } from './image-resolver.ts';
import type { LayerLimits } from './layer-limits.ts';
import type { SnapshotStore } from './snapshot-store.ts';

export const DEFAULT_DOWNLOAD_CONCURRENCY = 3;

export type PullEvent =
  | { type: 'resolved'; manifest: Digest; layers: number; reused: number }
  | { type: 'download'; layer: number; digest: Digest; bytes: number; total: number }
  | { type: 'unpack'; layer: number; chainId: Digest; tarBytes: number }
  | { type: 'layer-done'; layer: number; chainId: Digest; reused: boolean; warnings: readonly ApplyWarning[] }
  | { type: 'bundle'; dir: string };

export interface PullDeps {
  readonly client: RegistryClient;
  readonly snapshots: SnapshotStore;
  readonly content: FsContentStore;
  readonly onEvent?: (e: PullEvent) => void;
}

export interface PullOptions extends BundleOptions {
  readonly name: string;
  readonly reference: string;
  readonly platform: Platform;
  readonly bundleDir: string;
  /** For the bundle record (`pollen snapshots ls`). */
  readonly imageName: string;
  readonly concurrency?: number;
  /** Caps on each layer's uncompressed size and ratio (ERR_LAYER_TOO_LARGE); defaults otherwise. */
  readonly layerLimits?: LayerLimits;
  readonly signal?: AbortSignal;
}

export interface PullResult {
  readonly manifestDigest: Digest;
  readonly chainId: Digest;
  readonly layersUnpacked: number;
  readonly layersReused: number;
  readonly warnings: readonly ApplyWarning[];
}

export async function pullImage(deps: PullDeps, opts: PullOptions): Promise<PullResult> {
  const emit = deps.onEvent ?? (() => {});
  const image = await resolveImage(deps.client, opts.name, opts.reference, opts.platform, opts.signal);
  const layers = image.manifest.layers;
  const ids = chainIds(image.config.diffIds);
  if (ids.length === 0) throw new PollenError('ERR_INVALID_MANIFEST', 'image has no layers');
  let have = -1;
  for (let i = ids.length - 1; i >= 0; i--) {
    if (await deps.snapshots.stat(ids[i]!)) {
      have = i;
      break;
    }
  }
  emit({ type: 'resolved', manifest: image.manifestDigest, layers: layers.length, reused: have + 1 });
  for (const l of layers.slice(have + 1)) layerKind(l.mediaType); // refuse unknown media types before any work

  const abort = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, abort.signal]) : abort.signal;
  const fetcher = new LayerFetcher(deps, opts.name, opts.concurrency ?? DEFAULT_DOWNLOAD_CONCURRENCY, signal, emit);
  const blobs = layers.map((l, i) => (i > have ? fetcher.fetch(l, i) : undefined));
  for (const b of blobs) b?.catch(() => {}); // awaited in order below
  const warnings: ApplyWarning[] = [];
  try {
    for (let i = have + 1; i < layers.length; i++) {
      const layer = layers[i]!;
      const chainId = ids[i]!;
      const partial = await blobs[i]!;
      const active = await deps.snapshots.prepare(i > 0 ? ids[i - 1] : undefined);
      try {
        const tar = decompress(partial.createReadStream(undefined, signal), layerKind(layer.mediaType).compression, opts.layerLimits ? { limits: opts.layerLimits } : {});
        const r = await applyLayer(active.dir, tar, { signal, onTarBytes: (n) => emit({ type: 'unpack', layer: i, chainId, tarBytes: n }) });
        const expected = image.config.diffIds[i]!;
        if (r.diffId !== expected) {
          throw new PollenError('ERR_DIFFID_MISMATCH', `layer ${i} (${layer.digest}) unpacked to diffID ${r.diffId}, but the image config says ${expected}`, { layer: layer.digest, expected, actual: r.diffId });
        }
        await active.commit({ chainId, parent: i > 0 ? ids[i - 1] : undefined, diffId: expected, size: r.fileBytes });
        warnings.push(...r.warnings);
        emit({ type: 'layer-done', layer: i, chainId, reused: false, warnings: r.warnings });
      } catch (err) {
        await active.abort();
        throw err;
      }
      await deps.content.delete(layer.digest).catch(() => false);
    }
  } catch (err) {
    abort.abort(err);
    await Promise.allSettled(blobs.map(async (b) => (await b)?.fail(toPollenError(err))));
    throw toPollenError(err);
  }
  const top = ids[ids.length - 1]!;
  await writeBundle({ snapshots: deps.snapshots }, { ...opts, chainId: top, image: image.config, imageName: opts.imageName });
  emit({ type: 'bundle', dir: opts.bundleDir });
  return { manifestDigest: image.manifestDigest, chainId: top, layersUnpacked: layers.length - have - 1, layersReused: have + 1, warnings };
}

/** Downloads layer blobs into the content store, at most `concurrency` at once, in layer order. */
class LayerFetcher {
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(
    private readonly deps: PullDeps,
    private readonly name: string,
    private readonly concurrency: number,
    private readonly signal: AbortSignal,
    private readonly emit: (e: PullEvent) => void,
  ) {}

  /** Resolves as soon as the download has started: the PartialBlob streams while it fills. */
  async fetch(layer: ImageDescriptor, index: number): Promise<PartialBlob> {
    if (this.running >= this.concurrency) await new Promise<void>((r) => this.queue.push(r));
    this.running++;
    const release = (): void => {
      this.running--;
      this.queue.shift()?.();
    };
    try {
      const ingest = await this.deps.content.openIngest(layer.digest);
      const partial = new PartialBlob({ store: this.deps.content, ingest }, { size: layer.size });
      // Never rejects: its failures go to the partial, whose readers see them.
      void this.download(layer, index, partial).finally(release);
      return partial;
    } catch (err) {
      release();
      throw err;
    }
  }

  private async download(layer: ImageDescriptor, index: number, partial: PartialBlob): Promise<void> {
    try {
      const res = await this.deps.client.getBlob(this.name, layer.digest, { signal: this.signal }).catch((err: unknown) => {
        if (layerKind(layer.mediaType).foreign && (err as PollenError).code === 'ERR_BLOB_UNKNOWN') {
          throw new PollenError('ERR_LAYER_FOREIGN', `layer ${layer.digest} is foreign (non-distributable) and the registry does not have it${layer.urls?.length ? ` (it lives at ${layer.urls.join(', ')})` : ''}`, { digest: layer.digest });
        }
        throw err;
      });
      let bytes = 0;
      await partial.appendFrom(res.body as AsyncIterable<Uint8Array>, (n) => {
        bytes += n;
        this.emit({ type: 'download', layer: index, digest: layer.digest, bytes, total: layer.size });
      });
      await partial.commit();
    } catch (err) {
      await partial.fail(toPollenError(err));
    }
  }
}
