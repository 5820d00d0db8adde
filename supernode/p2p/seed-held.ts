// Piece hashes of a blob the seed's store holds whole, in the layout given: for a blob whose
// metainfo is gone or of an older layout, read from disk instead of fetched again.
import { createHash } from 'node:crypto';
import type { ContentStore } from '../../src/content-store.ts';
import type { Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import { pieceRange, type Metainfo } from '../../src/p2p/metainfo.ts';

export interface HeldMeta {
  digest: Digest;
  size: number;
  pieceSize: number;
  pieceCount: number;
  hashes: Array<string | null>;
}

export async function hashHeldBlob(store: ContentStore, layout: Metainfo): Promise<HeldMeta> {
  const { digest, size } = layout;
  const hashes: string[] = [];
  let hash = createHash('sha256');
  let inPiece = 0;
  for await (const chunk of await store.read(digest)) {
    let data = chunk as Buffer;
    while (data.length > 0) {
      if (hashes.length >= layout.pieceCount) throw new PollenError('ERR_SIZE_MISMATCH', `held blob ${digest} is longer than ${size} bytes`, { digest });
      const pieceLength = pieceRange(size, layout.pieceSize, hashes.length).length;
      const take = Math.min(pieceLength - inPiece, data.length);
      hash.update(data.subarray(0, take));
      inPiece += take;
      data = data.subarray(take);
      if (inPiece === pieceLength) {
        hashes.push(hash.digest('hex'));
        hash = createHash('sha256');
        inPiece = 0;
      }
    }
  }
  if (size === 0) hashes.push(hash.digest('hex'));
  if (hashes.length !== layout.pieceCount) throw new PollenError('ERR_SIZE_MISMATCH', `held blob ${digest} does not fill its ${layout.pieceCount} pieces`, { digest });
  return { ...layout, hashes };
}
