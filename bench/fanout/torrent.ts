// Just enough BitTorrent metainfo for the baseline: a bencode encoder (BEP 3) and a multi-file
// .torrent over the image's blobs, hashed in pieces across file boundaries as the spec requires.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export type Bencodable = number | string | Buffer | readonly Bencodable[] | { readonly [key: string]: Bencodable };

export function bencode(value: Bencodable): Buffer {
  const parts: Buffer[] = [];
  const enc = (v: Bencodable): void => {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new Error(`bencode: integers only, got ${v}`);
      parts.push(Buffer.from(`i${v}e`));
    } else if (typeof v === 'string' || Buffer.isBuffer(v)) {
      const b = typeof v === 'string' ? Buffer.from(v) : v;
      parts.push(Buffer.from(`${b.length}:`), b);
    } else if (Array.isArray(v)) {
      parts.push(Buffer.from('l'));
      for (const x of v as readonly Bencodable[]) enc(x);
      parts.push(Buffer.from('e'));
    } else {
      const dict = v as { readonly [key: string]: Bencodable };
      parts.push(Buffer.from('d'));
      // Keys sorted as raw byte strings.
      for (const k of Object.keys(dict).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
        enc(k);
        enc(dict[k]!);
      }
      parts.push(Buffer.from('e'));
    }
  };
  enc(value);
  return Buffer.concat(parts);
}

export interface TorrentFile {
  /** Path components inside the torrent's top directory. */
  path: readonly string[];
  /** Where the content is on disk now (for hashing). */
  source: string;
  length: number;
}

export interface Torrent {
  metainfo: Buffer;
  infoHash: Buffer;
  pieceCount: number;
}

/** SHA-1 of each piece of the concatenated files, streaming (memory bounded by one piece). */
export async function pieceHashes(files: readonly TorrentFile[], pieceLength: number): Promise<Buffer> {
  const hashes: Buffer[] = [];
  let hash = createHash('sha1');
  let filled = 0;
  for (const f of files) {
    let seen = 0;
    for await (const chunk of createReadStream(f.source, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      seen += chunk.length;
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(pieceLength - filled, chunk.length - off);
        hash.update(chunk.subarray(off, off + n));
        filled += n;
        off += n;
        if (filled === pieceLength) {
          hashes.push(hash.digest());
          hash = createHash('sha1');
          filled = 0;
        }
      }
    }
    if (seen !== f.length) throw new Error(`torrent: ${f.source} has ${seen} bytes, expected ${f.length}`);
  }
  if (filled > 0) hashes.push(hash.digest());
  return Buffer.concat(hashes);
}

export async function makeTorrent(name: string, files: readonly TorrentFile[], pieceLength: number, announce: string): Promise<Torrent> {
  const pieces = await pieceHashes(files, pieceLength);
  const info = {
    name,
    'piece length': pieceLength,
    pieces,
    files: files.map((f) => ({ length: f.length, path: [...f.path] })),
  };
  const infoHash = createHash('sha1').update(bencode(info)).digest();
  return { metainfo: bencode({ announce, info }), infoHash, pieceCount: pieces.length / 20 };
}

/** Piece size for a total: 256 KiB at least, doubled until there are at most ~1,000 pieces. */
export function choosePieceLength(totalBytes: number): number {
  let piece = 256 * 1024;
  while (totalBytes / piece > 1000) piece *= 2;
  return piece;
}

/** A 20-byte value percent-encoded for a tracker query string. */
export function percentEncode(bytes: Buffer): string {
  return [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}
