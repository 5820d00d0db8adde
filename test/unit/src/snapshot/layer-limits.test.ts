// Bounded decompression: a decompression bomb fails with ERR_LAYER_TOO_LARGE after a few MiB
// written, not after GiBs; ordinary layers (even small very compressible ones) pass.
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPollenError } from '../../../../src/errors.ts';
import { applyLayer } from '../../../../src/snapshot/apply-layer.ts';
import { decompress } from '../../../../src/snapshot/decompress.ts';
import { DEFAULT_LAYER_RATIO_FLOOR_BYTES, layerLimits } from '../../../../src/snapshot/layer-limits.ts';
import { buildTar } from '../../../helpers/images.ts';
import { fileHeader, gzipBomb } from '../../../integration/fixtures/hostile-layers.ts';

const MIB = 1024 ** 2;

/** Counts the compressed bytes the decompressor pulled from the blob. */
function counted(source: Readable): { stream: Readable; read: () => number } {
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      cb(null, chunk);
    },
  });
  source.pipe(t);
  source.on('error', (err) => t.destroy(err));
  return { stream: t, read: () => n };
}

async function diskUse(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir, { recursive: true })) total += (await lstat(join(dir, name))).blocks * 512;
  return total;
}

describe('layer size limits', () => {
  let dir: string;
  let root: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-limits-'));
    root = join(dir, 'rootfs');
    await mkdir(root);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('a 2 MB gzip bomb fails with ERR_LAYER_TOO_LARGE having written a few MiB and read a fraction of the blob', async () => {
    const bomb = gzipBomb();
    expect(bomb.length).toBeLessThan(2.2 * MIB);
    await writeFile(join(dir, 'bomb.gz'), bomb);
    const src = counted(createReadStream(join(dir, 'bomb.gz')));
    const err = await applyLayer(root, decompress(src.stream, 'gzip')).catch((e: unknown) => e);
    expect(isPollenError(err, 'ERR_LAYER_TOO_LARGE')).toBe(true);
    expect((err as Error).message).toMatch(/1000:1/);
    expect(await diskUse(root)).toBeLessThan(DEFAULT_LAYER_RATIO_FLOOR_BYTES + 8 * MIB);
    expect(src.read()).toBeLessThan(bomb.length / 4);
  });

  it('a zstd bomb fails the same way', async () => {
    const tar = Buffer.concat([fileHeader('zeros', 256 * MIB), Buffer.alloc(256 * MIB)]);
    const z = execFileSync('zstd', ['-q', '-c'], { input: tar, maxBuffer: 64 << 20 });
    expect(z.length).toBeLessThan(64 * 1024);
    const err = await applyLayer(root, decompress(Readable.from([z]), 'zstd')).catch((e: unknown) => e);
    expect(isPollenError(err, 'ERR_LAYER_TOO_LARGE')).toBe(true);
    expect(await diskUse(root)).toBeLessThan(DEFAULT_LAYER_RATIO_FLOOR_BYTES + 8 * MIB);
  });

  it('the absolute cap applies to uncompressed layers too', async () => {
    const tar = await buildTar([{ type: 'file', name: 'big', content: Buffer.alloc(3 * MIB, 1) }]);
    const err = await applyLayer(root, decompress(Readable.from([tar]), 'none', { limits: layerLimits({ maxBytes: 2 * MIB }) })).catch((e: unknown) => e);
    expect(isPollenError(err, 'ERR_LAYER_TOO_LARGE')).toBe(true);
    expect((err as Error).message).toContain(String(2 * MIB));
  });

  it('a very compressible layer below the ratio floor and an ordinary one are applied', async () => {
    const zeros = await buildTar([{ type: 'file', name: 'zeros', content: Buffer.alloc(DEFAULT_LAYER_RATIO_FLOOR_BYTES - MIB) }]);
    await applyLayer(root, decompress(Readable.from([gzipSync(zeros, { level: 9 })]), 'gzip'));
    expect((await lstat(join(root, 'zeros'))).size).toBe(DEFAULT_LAYER_RATIO_FLOOR_BYTES - MIB);
    const text = await buildTar([{ type: 'file', name: 'text', content: 'pollen '.repeat(4 * MIB) }]);
    await applyLayer(root, decompress(Readable.from([gzipSync(text)]), 'gzip'));
    expect((await lstat(join(root, 'text'))).size).toBe(7 * 4 * MIB);
  });

  it('a reader that gives up stops the decompression and closes the blob', async () => {
    await writeFile(join(dir, 'bomb.gz'), gzipBomb());
    const blob = createReadStream(join(dir, 'bomb.gz'));
    const tar = decompress(blob, 'gzip');
    await new Promise<void>((resolve) => tar.once('data', () => resolve()));
    tar.destroy();
    await new Promise<void>((resolve) => (blob.closed ? resolve() : blob.once('close', () => resolve())));
    expect(blob.destroyed).toBe(true);
  }, 20_000);

  it('limits must be positive numbers', () => {
    expect(() => layerLimits({ maxRatio: 0 })).toThrow(/maxRatio/);
    expect(() => layerLimits({ maxBytes: Number.NaN })).toThrow(/maxBytes/);
    expect(layerLimits({ maxRatio: 50 }).maxRatio).toBe(50);
  });
});
