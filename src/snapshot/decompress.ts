// Decompression adapters for layer blobs. gzip runs in node:zlib (on libuv's thread pool, off the
// main thread). zstd uses node:zlib's zstd when this Node has it (>= 22.15), otherwise the `zstd`
// binary (Debian package zstd) as a streaming subprocess, which also puts it on another core.
import { spawn } from 'node:child_process';
import * as zlib from 'node:zlib';
import { PassThrough, type Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PollenError } from '../errors.ts';
import type { LayerCompression } from '../oci/image.ts';

type ZstdFactory = () => Transform;
const nodeZstd = (zlib as unknown as { createZstdDecompress?: ZstdFactory }).createZstdDecompress;

/** zlib's default output chunk is 16 KiB; bigger chunks halve the per-chunk cost downstream. */
export const OUTPUT_CHUNK_BYTES = 256 * 1024;

/** Where zstd layers are decompressed on this Node. */
export const ZSTD_BACKEND: 'node:zlib' | 'zstd-binary' = nodeZstd ? 'node:zlib' : 'zstd-binary';

/** The uncompressed tar of a layer blob. Errors of the source or the decompressor surface on the result. */
export function decompress(source: Readable, compression: LayerCompression, options: { zstdBinary?: string } = {}): Readable {
  if (compression === 'none') return source;
  if (compression === 'gzip') return through(source, zlib.createGunzip({ chunkSize: OUTPUT_CHUNK_BYTES }));
  if (nodeZstd) return through(source, nodeZstd());
  return zstdSubprocess(source, options.zstdBinary ?? 'zstd');
}

function through(source: Readable, t: Transform): Readable {
  // `out` stays outside the pipeline so it is destroyed with the mapped error, not the raw one.
  const out = new PassThrough();
  pipeline(source, t).catch((err: unknown) => out.destroy(wrap(err)));
  t.pipe(out);
  return out;
}

function wrap(err: unknown): Error {
  if (err instanceof PollenError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code?.startsWith?.('Z_')) return new PollenError('ERR_LAYER_INVALID', `layer does not decompress: ${e.message}`, {}, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

function zstdSubprocess(source: Readable, bin: string): Readable {
  const child = spawn(bin, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString();
  });
  const fail = (err: Error): void => {
    if (!out.destroyed) out.destroy(err);
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  child.on('error', (err) => fail(new PollenError('ERR_INTERNAL', `cannot run ${bin} to decompress a zstd layer: ${err.message} (apt-get install zstd)`, {}, { cause: err })));
  pipeline(source, child.stdin).catch((err: unknown) => fail(wrap(err)));
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
