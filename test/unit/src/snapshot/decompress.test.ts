import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { isPollenError } from '../../../../src/errors.ts';
import { decompress } from '../../../../src/snapshot/decompress.ts';
import { seededBytes } from '../../../helpers/images.ts';

const data = seededBytes('decompress', 3 << 20);

describe('decompress', () => {
  it('gunzips', async () => expect((await buffer(decompress(Readable.from([gzipSync(data)]), 'gzip'))).equals(data)).toBe(true));

  it('decompresses zstd (node:zlib or the zstd binary) as a stream', async () => {
    const z = execFileSync('zstd', ['-q', '-c'], { input: data, maxBuffer: 16 << 20 });
    const chunks = Array.from({ length: Math.ceil(z.length / 65536) }, (_, i) => z.subarray(i * 65536, (i + 1) * 65536));
    expect((await buffer(decompress(Readable.from(chunks), 'zstd'))).equals(data)).toBe(true);
  });

  it('corrupt zstd is ERR_LAYER_INVALID', async () => {
    const err = await buffer(decompress(Readable.from([Buffer.from('not zstd at all')]), 'zstd')).catch((e: unknown) => e);
    expect(isPollenError(err, 'ERR_LAYER_INVALID')).toBe(true);
  });

  it('corrupt gzip is ERR_LAYER_INVALID', async () => {
    const err = await buffer(decompress(Readable.from([Buffer.from('not gzip at all')]), 'gzip')).catch((e: unknown) => e);
    expect(isPollenError(err, 'ERR_LAYER_INVALID')).toBe(true);
  });
});
