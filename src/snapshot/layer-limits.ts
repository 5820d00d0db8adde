// Bounded decompression of layer blobs. A layer's compressed size is known (the manifest says it
// and the content store checks it), but what it expands to is not: a 2 MB gzip of zeros is 2 GiB
// of tar, and a zstd one far more. The guard counts the uncompressed bytes as they leave the
// decompressor and fails the layer with ERR_LAYER_TOO_LARGE, before the applier has written more
// than a few MiB past the limit:
// - an absolute cap on the uncompressed size of one layer;
// - a cap on the ratio uncompressed / compressed-consumed, checked only once the output is past a
//   floor (small layers of zeros are legitimate and harmless).
// deflate cannot exceed ~1032:1, so a gzip bomb is caught by the ratio near the floor; real
// layers are far below it (text ~5:1, binaries ~3:1).
import { Transform, type TransformCallback } from 'node:stream';
import { PollenError } from '../errors.ts';

export interface LayerLimits {
  /** Largest uncompressed size of one layer, in bytes. */
  readonly maxBytes: number;
  /** Largest uncompressed / compressed ratio, checked once the output is past `ratioFloorBytes`. */
  readonly maxRatio: number;
  /** Output below this size is never refused for its ratio. */
  readonly ratioFloorBytes: number;
}

export const DEFAULT_LAYER_MAX_BYTES = 64 * 1024 ** 3;
export const DEFAULT_LAYER_MAX_RATIO = 1000;
export const DEFAULT_LAYER_RATIO_FLOOR_BYTES = 8 * 1024 ** 2;

export const DEFAULT_LAYER_LIMITS: LayerLimits = Object.freeze({
  maxBytes: DEFAULT_LAYER_MAX_BYTES,
  maxRatio: DEFAULT_LAYER_MAX_RATIO,
  ratioFloorBytes: DEFAULT_LAYER_RATIO_FLOOR_BYTES,
});

/** Checks limits given by a caller (a CLI flag): positive finite numbers. */
export function layerLimits(partial: Partial<LayerLimits> = {}): LayerLimits {
  const l = { ...DEFAULT_LAYER_LIMITS, ...partial };
  for (const [key, v] of Object.entries(l)) {
    if (!Number.isFinite(v) || v <= 0) throw new PollenError('ERR_INVALID_CONFIG', `layer limit ${key} must be a positive number, got ${v}`, { key });
  }
  return l;
}

/**
 * A pass-through that counts what the decompressor produced and fails with ERR_LAYER_TOO_LARGE
 * when a limit is crossed. `consumed()` is the number of compressed bytes the decompressor has
 * actually consumed (not merely been handed), so that read-ahead does not hide a high ratio.
 */
export class LayerSizeGuard extends Transform {
  private out = 0;

  constructor(
    private readonly limits: LayerLimits,
    private readonly consumed: (() => number) | undefined,
  ) {
    super();
  }

  get bytesOut(): number {
    return this.out;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.out += chunk.length;
    const { maxBytes, maxRatio, ratioFloorBytes } = this.limits;
    if (this.out > maxBytes) {
      cb(new PollenError('ERR_LAYER_TOO_LARGE', `layer expands to more than ${maxBytes} bytes (the uncompressed layer size limit)`, { limit: maxBytes, uncompressed: this.out }));
      return;
    }
    const inBytes = this.consumed?.();
    if (inBytes !== undefined && this.out > ratioFloorBytes && this.out > maxRatio * Math.max(inBytes, 1)) {
      cb(new PollenError('ERR_LAYER_TOO_LARGE', `layer expands more than ${maxRatio}:1 (${this.out} bytes from ${inBytes} compressed): refused as a decompression bomb`, { ratio: maxRatio, uncompressed: this.out, compressed: inBytes }));
      return;
    }
    cb(null, chunk);
  }
}
