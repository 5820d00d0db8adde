import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bencode, choosePieceLength, makeTorrent, percentEncode, pieceHashes } from '../../../bench/fanout/torrent.ts';

describe('bencode', () => {
  it('encodes the BEP 3 examples', () => {
    expect(bencode('spam').toString()).toBe('4:spam');
    expect(bencode(3).toString()).toBe('i3e');
    expect(bencode(-3).toString()).toBe('i-3e');
    expect(bencode(['spam', 'eggs']).toString()).toBe('l4:spam4:eggse');
    expect(bencode({ spam: 'eggs', cow: 'moo' }).toString()).toBe('d3:cow3:moo4:spam4:eggse');
    expect(bencode({ spam: ['a', 'b'] }).toString()).toBe('d4:spaml1:a1:bee');
  });

  it('counts string lengths in bytes, not characters, and keeps binary strings intact', () => {
    expect(bencode('é')).toEqual(Buffer.from('2:é'));
    expect(bencode(Buffer.from([0, 255]))).toEqual(Buffer.concat([Buffer.from('2:'), Buffer.from([0, 255])]));
  });

  it('refuses non-integers', () => {
    expect(() => bencode(1.5)).toThrow(/integers only/);
  });
});

describe('torrent metainfo', () => {
  let dir: string;
  const a = Buffer.alloc(700, 1);
  const b = Buffer.alloc(1000, 2);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-torrent-'));
    await writeFile(join(dir, 'a'), a);
    await writeFile(join(dir, 'b'), b);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const files = (): { path: string[]; source: string; length: number }[] => [
    { path: ['a'], source: join(dir, 'a'), length: a.length },
    { path: ['b'], source: join(dir, 'b'), length: b.length },
  ];

  it('hashes pieces across file boundaries, the last piece short', async () => {
    const all = Buffer.concat([a, b]);
    const expected = [0, 512, 1024, 1536].map((off) => createHash('sha1').update(all.subarray(off, off + 512)).digest());
    expect(await pieceHashes(files(), 512)).toEqual(Buffer.concat(expected));
  });

  it('fails when a file is not the declared length', async () => {
    await expect(pieceHashes([{ path: ['a'], source: join(dir, 'a'), length: 701 }], 512)).rejects.toThrow(/700 bytes, expected 701/);
  });

  it('info hash is the SHA-1 of the bencoded info dictionary as it appears in the metainfo', async () => {
    const t = await makeTorrent('blobs', files(), 512, 'http://10.0.0.1:6969/announce');
    const start = t.metainfo.indexOf('4:infod') + '4:info'.length;
    const info = t.metainfo.subarray(start, t.metainfo.length - 1);
    expect(createHash('sha1').update(info).digest()).toEqual(t.infoHash);
    expect(t.pieceCount).toBe(4);
    expect(t.metainfo.toString('latin1')).toContain('8:announce29:http://10.0.0.1:6969/announce');
  });

  it('chooses 256 KiB pieces for small images and at most ~1000 pieces for big ones', () => {
    expect(choosePieceLength(64 << 20)).toBe(256 * 1024);
    expect(choosePieceLength(1024 << 20)).toBe(2 << 20);
  });

  it('percent-encodes every byte of an info hash', () => {
    expect(percentEncode(Buffer.from([0, 0x1f, 0xff]))).toBe('%00%1f%ff');
  });
});
