// Blobs through the mirror: from the content store at disk speed when present; otherwise fetched
// once (however many clients ask at the same moment) and streamed to every waiting client as the
// bytes arrive. Every client first passes the access gate with its own credentials, for this digest
// in the repository it named, before it is served, starts a download or joins one.
import type { Logger } from 'pino';
import type { ContentStore } from '../../src/content-store.ts';
import type { Digest } from '../../src/digest.ts';
import { contentRange, parseRange } from '../../src/oci/range.ts';
import { headerValue } from '../../src/oci/registry-client.ts';
import type { PartialBlob } from '../../src/partial-blob.ts';
import type { AccessGate } from './access-gate.ts';
import type { BlobDownloader, UpstreamTarget } from '../blob-downloader.ts';
import type { MirrorReply } from './mirror-reply.ts';
import type { Upstream } from './upstreams.ts';

export interface BlobRequest {
  readonly method: 'GET' | 'HEAD';
  readonly upstream: Upstream;
  readonly name: string;
  readonly digest: Digest;
  readonly authorization: string | undefined;
  readonly range: string | undefined;
  readonly signal?: AbortSignal;
  /** Hears how this request is served: from the store (hit), a new download (miss) or one in flight (join). */
  readonly onOutcome?: (outcome: 'hit' | 'miss' | 'join') => void;
}

export interface BlobServiceStats {
  onHit(): void;
  onMiss(): void;
  onJoin(): void;
}

export class BlobService {
  private readonly store: ContentStore;
  private readonly gate: AccessGate;
  private readonly downloader: BlobDownloader;
  private readonly logger: Logger;
  private readonly stats: BlobServiceStats | undefined;
  /** Downloads in flight by digest: the single flight every concurrent client joins. */
  private readonly inflight = new Map<Digest, Promise<PartialBlob>>();

  constructor(deps: { store: ContentStore; gate: AccessGate; downloader: BlobDownloader; logger: Logger; stats?: BlobServiceStats }) {
    this.store = deps.store;
    this.gate = deps.gate;
    this.downloader = deps.downloader;
    this.logger = deps.logger;
    this.stats = deps.stats;
  }

  async serve(req: BlobRequest): Promise<MirrorReply> {
    const target: UpstreamTarget = { registry: req.upstream.host, baseUrl: req.upstream.baseUrl, name: req.name, authorization: req.authorization ?? req.upstream.staticAuthorization };
    const object = { kind: 'blob', digest: req.digest } as const;
    const local = await this.store.stat(req.digest);
    // The gate decides first, whatever happens next: nothing is served, and no download is started
    // or joined (P2P or upstream), for a client the upstream has not allowed this blob in this repository.
    const gate = await this.gate.check(target, object, { clientMethod: req.method, haveLocal: local !== undefined });
    if (!gate.allowed) return gate.reply;

    // Stat again: the blob may have been committed while the gate asked upstream.
    const committed = local ?? (await this.store.stat(req.digest));
    if (committed) {
      this.stats?.onHit();
      req.onOutcome?.('hit');
      return this.reply(req, committed.size, (range) => this.store.read(req.digest, range));
    }
    const running = this.inflight.get(req.digest);
    if (req.method === 'HEAD' && !running) {
      // A HEAD on a blob that is not here needs its size only: the probe has it, or ask for it.
      const probed = gate.probe ? Number(headerValue(gate.probe['content-length'])) : NaN;
      if (Number.isSafeInteger(probed)) return this.headers(req.digest, probed, 200);
      const again = await this.gate.check(target, object, { clientMethod: 'HEAD', haveLocal: false, force: true });
      if (!again.allowed) return again.reply;
      return this.headers(req.digest, Number(headerValue(again.probe?.['content-length']) ?? 0), 200);
    }
    if (running) this.stats?.onJoin();
    else this.stats?.onMiss();
    req.onOutcome?.(running ? 'join' : 'miss');
    const partial = await (running ?? this.download(req, target, gate.probe));
    return this.reply(req, partial.size, async (range) => partial.pooledBody(range, req.signal));
  }

  private download(req: BlobRequest, target: UpstreamTarget, probe: Readonly<Record<string, string | string[] | undefined>> | undefined): Promise<PartialBlob> {
    const sizeHint = probe ? Number(headerValue(probe['content-length'])) : NaN;
    const started = this.downloader.start({ digest: req.digest, sizeHint: Number.isSafeInteger(sizeHint) ? sizeHint : undefined, upstream: target });
    this.inflight.set(req.digest, started);
    started.then(
      (partial) => {
        void partial.settledPromise().finally(() => {
          if (this.inflight.get(req.digest) === started) this.inflight.delete(req.digest);
        });
      },
      (err: unknown) => {
        if (this.inflight.get(req.digest) === started) this.inflight.delete(req.digest);
        this.logger.debug({ digest: req.digest, err }, 'blob download did not start');
      },
    );
    return started;
  }

  private async reply(req: BlobRequest, size: number, open: (range?: { start: number; end: number }) => Promise<MirrorReply['body']>): Promise<MirrorReply> {
    const range = parseRange(req.range, size);
    if (!range) return req.method === 'HEAD' ? this.headers(req.digest, size, 200) : { ...this.headers(req.digest, size, 200), body: await open() };
    const headers = { ...this.headers(req.digest, range.end - range.start + 1, 206).headers, 'content-range': contentRange(range, size) };
    return req.method === 'HEAD' ? { status: 206, headers } : { status: 206, headers, body: await open(range) };
  }

  private headers(digest: Digest, length: number, status: number): MirrorReply {
    return {
      status,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(length),
        'docker-content-digest': digest,
        'accept-ranges': 'bytes',
        etag: `"${digest}"`,
      },
    };
  }
}
