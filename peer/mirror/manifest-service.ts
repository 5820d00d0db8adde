// Manifests through the mirror. A manifest is immutable by digest, so it is cached by digest in the
// content store (media type in level). A tag is always revalidated upstream with the client's own
// Accept and Authorization; only when the upstream cannot be reached is the last digest seen for
// that tag served, and then only to a client the upstream allowed that very digest before. Every
// manifest the upstream gives a client is recorded as allowed by digest (for this client and
// repository), which is all the offline path trusts.
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { ContentStore } from '../../src/content-store.ts';
import type { Kv } from '../../src/db.ts';
import { parseDigest, sha256Digest, type Digest } from '../../src/digest.ts';
import { PollenError, toPollenError } from '../../src/errors.ts';
import { readBodyCapped } from '../../src/oci/body.ts';
import { parseManifest, type ImageDescriptor } from '../../src/oci/image.ts';
import { ACCEPT_ALL_MANIFESTS, MAX_MANIFEST_BYTES, MediaType } from '../../src/oci/media-types.ts';
import type { ManifestRef } from '../../src/oci/names.ts';
import { headerValue, RegistryClient } from '../../src/oci/registry-client.ts';
import { redactUrl } from '../../src/oci/redact-url.ts';
import type { AccessGate } from './access-gate.ts';
import type { UpstreamTarget } from '../blob-downloader.ts';
import type { PrefetchRequest } from './blob-service.ts';
import { relayUpstream, type MirrorReply } from './mirror-reply.ts';
import type { Upstream } from './upstreams.ts';

/** An image's config is fetched ahead of its client's request up to this size (configs are a few KiB). */
export const MAX_PREFETCH_CONFIG_BYTES = 1024 * 1024;

interface ManifestMeta {
  mediaType: string;
  size: number;
}

interface TagMeta {
  digest: Digest;
  mediaType: string;
}

export interface ManifestRequest {
  readonly method: 'GET' | 'HEAD';
  readonly upstream: Upstream;
  readonly name: string;
  readonly ref: ManifestRef;
  readonly authorization: string | undefined;
  readonly accept: string | undefined;
}

export class ManifestService {
  private readonly store: ContentStore;
  private readonly meta: Kv<ManifestMeta>;
  private readonly tags: Kv<TagMeta>;
  private readonly gate: AccessGate;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly logger: Logger;
  /** Starts a blob's download ahead of its client's request (BlobService.prefetch). */
  private readonly prefetch: ((req: PrefetchRequest) => void) | undefined;

  constructor(deps: { store: ContentStore; db: Kv; gate: AccessGate; dispatcher?: Dispatcher; logger: Logger; prefetch?: (req: PrefetchRequest) => void }) {
    this.prefetch = deps.prefetch;
    this.store = deps.store;
    this.meta = deps.db.sub<ManifestMeta>('manifest');
    this.tags = deps.db.sub<TagMeta>('tag');
    this.gate = deps.gate;
    this.dispatcher = deps.dispatcher;
    this.logger = deps.logger;
  }

  async serve(req: ManifestRequest): Promise<MirrorReply> {
    const target: UpstreamTarget = { baseUrl: req.upstream.baseUrl, name: req.name, authorization: req.authorization ?? req.upstream.staticAuthorization };
    if (req.ref.kind === 'digest') {
      const cached = await this.cached(req.ref.digest);
      if (cached) {
        const gate = await this.gate.check(target, { kind: 'manifest', digest: req.ref.digest }, { clientMethod: req.method, haveLocal: true });
        return gate.allowed ? this.reply(req.method, req.ref.digest, cached) : gate.reply;
      }
    }
    return this.fromUpstream(req, target);
  }

  private async fromUpstream(req: ManifestRequest, target: UpstreamTarget): Promise<MirrorReply> {
    const reference = req.ref.kind === 'tag' ? req.ref.tag : req.ref.digest;
    const client = new RegistryClient({ dispatcher: this.dispatcher }, { baseUrl: target.baseUrl });
    const headers: Record<string, string> = { accept: req.accept ?? ACCEPT_ALL_MANIFESTS };
    if (target.authorization) headers.authorization = target.authorization;
    let res: Awaited<ReturnType<RegistryClient['request']>>;
    try {
      res = await client.request(req.method, `/v2/${req.name}/manifests/${reference}`, { headers, scope: `repository:${req.name}:pull`, relayAuth: true });
    } catch (err) {
      return this.offline(req, target, toPollenError(err, 'ERR_UPSTREAM_UNAVAILABLE'));
    }
    if (res.statusCode >= 500) {
      await res.body.dump();
      return this.offline(req, target, new PollenError('ERR_UPSTREAM_UNAVAILABLE', `registry ${client.displayUrl} answered ${res.statusCode} for manifest ${req.name}:${reference}`, { upstream: client.displayUrl, status: res.statusCode }));
    }
    if (res.statusCode !== 200) {
      if (req.ref.kind === 'digest') this.gate.recordRefused(target, { kind: 'manifest', digest: req.ref.digest });
      return relayUpstream(res, req.method, req.method, 'MANIFEST_UNKNOWN');
    }
    const length = Number(headerValue(res.headers['content-length']));
    if (length > MAX_MANIFEST_BYTES) {
      await res.body.dump();
      throw new PollenError('ERR_MANIFEST_TOO_LARGE', `manifest ${req.name}:${reference} is ${length} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`, { size: length });
    }
    const contentType = (headerValue(res.headers['content-type']) ?? '').split(';')[0]!.trim();
    if (req.method === 'HEAD') {
      await res.body.dump();
      const out: Record<string, string> = {};
      for (const h of ['content-type', 'content-length', 'docker-content-digest', 'etag']) {
        const v = headerValue(res.headers[h]);
        if (v !== undefined) out[h] = v;
      }
      // The upstream answered this client for this digest (by digest, or the tag's current one).
      const answered = req.ref.kind === 'digest' ? req.ref.digest : tryParseDigest(out['docker-content-digest']);
      if (answered) this.gate.recordAllowed(target, { kind: 'manifest', digest: answered });
      return { status: 200, headers: out };
    }
    const bytes = await readBodyCapped(res.body, MAX_MANIFEST_BYTES, `manifest ${req.name}:${reference}`);
    const digest = sha256Digest(bytes);
    if (req.ref.kind === 'digest' && digest !== req.ref.digest) {
      throw new PollenError('ERR_DIGEST_MISMATCH', `registry ${client.displayUrl} sent a manifest hashing to ${digest} for ${req.ref.digest}`, { expected: req.ref.digest, actual: digest });
    }
    const mediaType = contentType || mediaTypeOf(bytes);
    this.gate.recordAllowed(target, { kind: 'manifest', digest });
    await this.remember(digest, bytes, mediaType);
    if (req.ref.kind === 'tag') await this.tags.put(tagKey(req.upstream.baseUrl, req.name, req.ref.tag), { digest, mediaType });
    this.prefetchConfig(req, mediaType, bytes);
    return this.reply('GET', digest, { mediaType, size: bytes.length }, bytes);
  }

  /**
   * An image manifest the upstream just gave a client names the config the client asks for next
   * (or, for containers/image clients, after every layer): its download starts now, as that
   * client (BlobService.prefetch). Only the config, and only a small one: a client that reads a
   * manifest and stops (an engine checking a tag it holds) costs at most that.
   */
  private prefetchConfig(req: ManifestRequest, mediaType: string, bytes: Buffer): void {
    if (!this.prefetch || (mediaType !== MediaType.OciManifest && mediaType !== MediaType.DockerManifest)) return;
    let config: ImageDescriptor;
    try {
      config = parseManifest(bytes).config;
    } catch {
      return; // the client will say what it makes of it
    }
    if (config.size > MAX_PREFETCH_CONFIG_BYTES) return;
    this.prefetch({ upstream: req.upstream, name: req.name, digest: config.digest, size: config.size, authorization: req.authorization });
  }

  /** The upstream cannot be asked: serve the last digest known for a tag, to a client allowed that digest before. */
  private async offline(req: ManifestRequest, target: UpstreamTarget, cause: PollenError): Promise<MirrorReply> {
    if (req.ref.kind === 'tag') {
      const last = await this.tags.get(tagKey(req.upstream.baseUrl, req.name, req.ref.tag));
      const cached = last && this.gate.wasAllowed(target, { kind: 'manifest', digest: last.digest }) && (await this.cached(last.digest));
      if (last && cached) {
        this.logger.warn({ upstream: redactUrl(target.baseUrl), name: req.name, tag: req.ref.tag, digest: last.digest, err: cause.message }, 'upstream unreachable: serving the last known digest for the tag');
        return this.reply(req.method, last.digest, cached);
      }
    }
    throw cause;
  }

  private async cached(digest: Digest): Promise<ManifestMeta | undefined> {
    const meta = await this.meta.get(digest);
    return meta && (await this.store.stat(digest)) ? meta : undefined;
  }

  private async remember(digest: Digest, bytes: Buffer, mediaType: string): Promise<void> {
    if (!(await this.store.stat(digest))) {
      const ingest = await this.store.openIngest(digest);
      try {
        await ingest.writeAt(bytes, 0);
        await ingest.commit(bytes.length);
      } catch (err) {
        await ingest.abort();
        throw err;
      }
    }
    await this.meta.put(digest, { mediaType, size: bytes.length });
  }

  private async reply(method: 'GET' | 'HEAD', digest: Digest, meta: ManifestMeta, bytes?: Buffer): Promise<MirrorReply> {
    const headers = { 'content-type': meta.mediaType, 'content-length': String(meta.size), 'docker-content-digest': digest, etag: `"${digest}"` };
    if (method === 'HEAD') return { status: 200, headers };
    return { status: 200, headers, body: bytes ?? (await this.store.read(digest)) };
  }
}

/** Keyed by the upstream's URL, not the name clients give it: content of one upstream is never another's. */
function tagKey(baseUrl: string, name: string, tag: string): string {
  return `${baseUrl}/${name}:${tag}`;
}

function tryParseDigest(s: string | undefined): Digest | undefined {
  try {
    return s === undefined ? undefined : parseDigest(s);
  } catch {
    return undefined;
  }
}

function mediaTypeOf(bytes: Buffer): string {
  try {
    const m = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
    if (typeof m.mediaType === 'string') return m.mediaType;
  } catch {
    // not JSON: fall through
  }
  throw new PollenError('ERR_INVALID_MANIFEST', 'upstream sent a manifest with neither a Content-Type nor a mediaType');
}
