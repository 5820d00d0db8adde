// Blobs straight from the registry: one ranged-capable GET with the client's credentials, written
// in order into the store while clients stream it (paced by the host's download budget, when the
// target carries one); verified and committed at the end.
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { ContentStore } from '../../src/content-store.ts';
import { PollenError, toPollenError } from '../../src/errors.ts';
import { RegistryClient } from '../../src/oci/registry-client.ts';
import { redactUrl } from '../../src/oci/redact-url.ts';
import { PartialBlob } from '../../src/partial-blob.ts';
import { pacedChunks, type Throttle } from '../../src/rate/throttle.ts';
import type { BlobDownloader, BlobFetchRequest } from '../blob-downloader.ts';

export interface DownloadStats {
  onUpstreamBytes(bytes: number): void;
}

export class UpstreamDownloader implements BlobDownloader {
  private readonly store: ContentStore;
  private readonly logger: Logger;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly stats: DownloadStats | undefined;

  constructor(deps: { store: ContentStore; logger: Logger; dispatcher?: Dispatcher; stats?: DownloadStats }) {
    this.store = deps.store;
    this.logger = deps.logger;
    this.dispatcher = deps.dispatcher;
    this.stats = deps.stats;
  }

  async start(request: BlobFetchRequest): Promise<PartialBlob> {
    const { digest, upstream } = request;
    const client = new RegistryClient({ dispatcher: this.dispatcher }, { baseUrl: upstream.baseUrl });
    const controller = new AbortController();
    const headers: Record<string, string> = {};
    if (upstream.authorization) headers.authorization = upstream.authorization;
    const res = await client.request('GET', `/v2/${upstream.name}/blobs/${digest}`, {
      headers,
      signal: controller.signal,
      scope: `repository:${upstream.name}:pull`,
      relayAuth: true,
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw upstreamStatusError(res.statusCode, upstream.baseUrl, digest);
    }
    const length = Number(res.headers['content-length']);
    const size = Number.isSafeInteger(length) && length >= 0 ? length : request.sizeHint;
    if (size === undefined) {
      res.body.destroy();
      throw new PollenError('ERR_UPSTREAM_PROTOCOL', `registry ${client.displayUrl} sent blob ${digest} without a length`, { upstream: client.displayUrl });
    }
    const ingest = await this.store.openIngest(digest, { expectedSize: size }).catch((err: unknown) => { res.body.destroy(); throw err; }); // ERR_DISK_QUOTA: refused before any byte
    const partial = new PartialBlob({ store: this.store, ingest }, { size });
    void this.fill(partial, res.body, client.displayUrl, upstream.throttle).catch(() => {});
    return partial;
  }

  private async fill(partial: PartialBlob, body: AsyncIterable<Uint8Array> & { destroy(): void }, baseUrl: string, throttle: Throttle | undefined): Promise<void> {
    const started = Date.now();
    try {
      await partial.appendFrom(pacedChunks(body, throttle), (n) => this.stats?.onUpstreamBytes(n));
      await partial.commit();
      this.logger.info({ digest: partial.digest, size: partial.size, ms: Date.now() - started, from: { upstream: partial.size } }, 'blob committed');
    } catch (err) {
      body.destroy();
      const e = toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE');
      this.logger.warn({ digest: partial.digest, upstream: baseUrl, code: e.code, err: e.message }, 'blob download failed; nothing committed');
      await partial.fail(e);
      throw e;
    }
  }
}

export function upstreamStatusError(status: number, url: string, digest: string): PollenError {
  const baseUrl = redactUrl(url);
  if (status === 401) return new PollenError('ERR_UNAUTHORIZED', `registry ${baseUrl} requires authentication for blob ${digest}`, { upstream: baseUrl });
  if (status === 403) return new PollenError('ERR_DENIED', `registry ${baseUrl} denied access to blob ${digest}`, { upstream: baseUrl });
  if (status === 404) return new PollenError('ERR_BLOB_UNKNOWN', `blob ${digest} not found at ${baseUrl}`, { upstream: baseUrl });
  return new PollenError('ERR_UPSTREAM_UNAVAILABLE', `registry ${baseUrl} answered ${status} for blob ${digest}`, { upstream: baseUrl, status });
}
