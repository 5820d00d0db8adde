// Decompression adapters for layer blobs. gzip runs in node:zlib (on libuv's thread pool, off the
// main thread). zstd uses node:zlib's zstd when this Node has it (>= 22.15), otherwise the `zstd`
// binary (Debian package zstd) as a streaming subprocess, which also puts it on another core.
import { spawn } from 'node:child_process';
import * as zlib from 'node:zlib';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PollenError } from '../errors.ts';
import type { LayerCompression } from '../oci/image.ts';
import { DEFAULT_LAYER_LIMITS, LayerSizeGuard, type LayerLimits } from './layer-limits.ts';

type ZstdFactory = () => Transform;
const nodeZstd = (zlib as unknown as { createZstdDecompress?: ZstdFactory }).createZstdDecompress;

/** zlib's default output chunk is 16 KiB; bigger chunks halve the per-chunk cost downstream. */
export const OUTPUT_CHUNK_BYTES = 256 * 1024;

/** Where zstd layers are decompressed on this Node. */
export const ZSTD_BACKEND: 'node:zlib' | 'zstd-binary' = nodeZstd ? 'node:zlib' : 'zstd-binary';

export interface DecompressOptions {
  readonly zstdBinary?: string;
  /** Size and ratio caps of the uncompressed layer (ERR_LAYER_TOO_LARGE); defaults apply. */
  readonly limits?: LayerLimits;
}

/**
 * The uncompressed tar of a layer blob, bounded by `limits`. Errors of the source, the
 * decompressor or the limits surface on the result.
 */
export function decompress(source: Readable, compression: LayerCompression, options: DecompressOptions = {}): Readable {
  const limits = options.limits ?? DEFAULT_LAYER_LIMITS;
  if (compression === 'none') return through(source, new PassThrough(), limits, undefined);
  if (compression === 'gzip') {
    // zlib's bytesWritten counts the input the engine has consumed, not what waits in its buffer.
    const gunzip = zlib.createGunzip({ chunkSize: OUTPUT_CHUNK_BYTES });
    return through(source, gunzip, limits, () => gunzip.bytesWritten);
  }
  if (nodeZstd) {
    const z = nodeZstd() as Transform & { bytesWritten: number };
    return through(source, z, limits, () => z.bytesWritten);
  }
  return zstdSubprocess(source, options.zstdBinary ?? 'zstd', limits);
}

function through(source: Readable, t: Transform, limits: LayerLimits, consumed: (() => number) | undefined): Readable {
  // `out` stays outside the pipeline so it is destroyed with the mapped error, not the raw one.
  const out = new LayerSizeGuard(limits, consumed);
  const fail = (err: unknown): void => {
    if (!out.destroyed) out.destroy(wrap(err));
  };
  pipeline(source, t).catch(fail);
  t.pipe(out);
  // A limit crossed, or the reader gave up (a bad entry): stop reading the blob and decompressing.
  out.on('error', (err) => {
    if (!t.destroyed) t.destroy(err);
  });
  out.on('close', () => {
    if (!t.destroyed) t.destroy();
  });
  return out;
}

/** Counts the bytes that pass (what a subprocess was given). */
class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

function wrap(err: unknown): Error {
  if (err instanceof PollenError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code?.startsWith?.('Z_')) return new PollenError('ERR_LAYER_INVALID', `layer does not decompress: ${e.message}`, {}, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

function zstdSubprocess(source: Readable, bin: string, limits: LayerLimits): Readable {
  const child = spawn(bin, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const counter = new ByteCounter();
  const out = new LayerSizeGuard(limits, () => counter.bytes);
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString();
  });
  const fail = (err: Error): void => {
    if (!out.destroyed) out.destroy(err);
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  child.on('error', (err) => fail(new PollenError('ERR_INTERNAL', `cannot run ${bin} to decompress a zstd layer: ${err.message} (apt-get install zstd)`, {}, { cause: err })));
  pipeline(source, counter, child.stdin).catch((err: unknown) => fail(wrap(err)));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  pipeline(child.stdout, out, { end: false })
    .then(async () => {
      const code = await exited;
      if (code !== 0) fail(new PollenError('ERR_LAYER_INVALID', `zstd failed to decompress the layer (exit ${code}): ${stderr.trim()}`));
      else out.end();
    })
    .catch((err: unknown) => fail(wrap(err)));
  out.on('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return out;
}
