// An in-memory registry behind the seed's fetcher seam, for the seed's unit tests: blobs per
// repository, which credential may read them, what HEAD and GET declare, and the chunks a GET
// streams on demand (counted, so a test sees what the seed holds between socket and disk).
import { createHash } from 'node:crypto';
import type { Digest } from '../../../../src/digest.ts';
import type { SeedBody, SeedFetcher } from '../../../../supernode/p2p/seed-fetcher.ts';
import type { SeedSource } from '../../../../supernode/p2p/seed-upstreams.ts';

export interface FakeBlob {
  readonly bytes: Buffer;
  /** Repository that holds it. */
  readonly name: string;
  /** Authorization values that may read it; undefined: anyone. */
  readonly readers?: ReadonlySet<string>;
  /** HEAD's Content-Length when it lies. */
  declared?: number;
  /** GET's Content-Length: the true length unless set; null sends none (chunked). */
  getLength?: number | null;
  /** Bytes a GET sends after the blob (a registry that sends more than it declared). */
  trailing?: Buffer;
}

export function digestOf(bytes: Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
}

export class FakeRegistry implements SeedFetcher {
  readonly blobs = new Map<Digest, FakeBlob>();
  readonly heads: Array<{ source: SeedSource; digest: Digest }> = [];
  readonly gets: Array<{ source: SeedSource; digest: Digest }> = [];
  chunkBytes = 64 * 1024;
  /** Bytes handed to the seed by GET bodies so far. */
  pulled = 0;
  /** Called before each chunk is handed over. */
  onChunk: (() => void) | undefined;
  /** Awaited before each chunk is handed over (a registry that holds its bytes back). */
  gate: ((offset: number) => Promise<void>) | undefined;

  add(blob: FakeBlob): Digest {
    const digest = digestOf(blob.bytes);
    this.blobs.set(digest, blob);
    return digest;
  }

  private status(source: SeedSource, digest: Digest): { status: number; blob?: FakeBlob } {
    const blob = this.blobs.get(digest);
    if (!blob || blob.name !== source.name) return { status: 404 };
    if (blob.readers && !(source.authorization && blob.readers.has(source.authorization))) return { status: source.authorization ? 403 : 401 };
    return { status: 200, blob };
  }

  async head(source: SeedSource, digest: Digest): Promise<{ status: number; size: number | undefined }> {
    this.heads.push({ source, digest });
    const { status, blob } = this.status(source, digest);
    return { status, size: blob ? (blob.declared ?? blob.bytes.length) : undefined };
  }

  async get(source: SeedSource, digest: Digest): Promise<{ status: number; size: number | undefined; body: SeedBody }> {
    this.gets.push({ source, digest });
    const { status, blob } = this.status(source, digest);
    const data = blob ? Buffer.concat([blob.bytes, blob.trailing ?? Buffer.alloc(0)]) : Buffer.alloc(0);
    const size = blob ? (blob.getLength === null ? undefined : (blob.getLength ?? blob.bytes.length)) : undefined;
    let destroyed = false;
    const chunkBytes = this.chunkBytes;
    const self = this;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let off = 0; off < data.length && !destroyed; off += chunkBytes) {
        await new Promise((r) => setImmediate(r));
        await self.gate?.(off);
        const chunk = data.subarray(off, off + chunkBytes);
        self.pulled += chunk.length;
        self.onChunk?.();
        yield Buffer.from(chunk);
      }
    }
    const it = chunks();
    return { status, size, body: { [Symbol.asyncIterator]: () => it, destroy: () => void (destroyed = true) } };
  }
}
