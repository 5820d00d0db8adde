// Manifests through the mirror. A manifest is immutable by digest, so it is cached by digest in the
// content store (media type in level). A tag is always revalidated upstream with the client's own
// Accept and Authorization; only when the upstream cannot be reached is the last digest seen for
// that tag served, and then only to a client the upstream allowed before.
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { ContentStore } from '../../src/content-store.ts';
import type { Kv } from '../../src/db.ts';
import { sha256Digest, type Digest } from '../../src/digest.ts';
import { PollenError, toPollenError } from '../../src/errors.ts';
import { readBodyCapped } from '../../src/oci/body.ts';
import { ACCEPT_ALL_MANIFESTS, MAX_MANIFEST_BYTES } from '../../src/oci/media-types.ts';
import type { ManifestRef } from '../../src/oci/names.ts';
import { headerValue, RegistryClient } from '../../src/oci/registry-client.ts';
import type { AccessCache } from './access-control.ts';
import type { AccessGate } from './access-gate.ts';
import type { UpstreamTarget } from '../blob-downloader.ts';
import { relayUpstream, type MirrorReply } from './mirror-reply.ts';
import type { Upstream } from './upstreams.ts';

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
  private readonly access: AccessCache;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly logger: Logger;

  constructor(deps: { store: ContentStore; db: Kv; gate: AccessGate; access: AccessCache; dispatcher?: Dispatcher; logger: Logger }) {
    this.store = deps.store;
    this.meta = deps.db.sub<ManifestMeta>('manifest');
    this.tags = deps.db.sub<TagMeta>('tag');
    this.gate = deps.gate;
    this.access = deps.access;
    this.dispatcher = deps.dispatcher;
    this.logger = deps.logger;
  }

  async serve(req: ManifestRequest): Promise<MirrorReply> {
    const target: UpstreamTarget = { baseUrl: req.upstream.baseUrl, name: req.name, authorization: req.authorization ?? req.upstream.staticAuthorization };
    if (req.ref.kind === 'digest') {
      const cached = await this.cached(req.ref.digest);
      if (cached) {
        const gate = await this.gate.check(target, `/v2/${req.name}/manifests/${req.ref.digest}`, {
          clientMethod: req.method,
          accept: ACCEPT_ALL_MANIFESTS,
          haveLocal: true,
          notFoundCode: 'MANIFEST_UNKNOWN',
        });
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
      return this.offline(req, target, new PollenError('ERR_UPSTREAM_UNAVAILABLE', `registry ${target.baseUrl} answered ${res.statusCode} for manifest ${req.name}:${reference}`, { upstream: target.baseUrl, status: res.statusCode }));
    }
    if (res.statusCode !== 200) {
      if (res.statusCode === 401 || res.statusCode === 403) this.access.revoke(target);
      return relayUpstream(res, req.method, req.method, 'MANIFEST_UNKNOWN');
    }
    this.access.allow(target);
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
      return { status: 200, headers: out };
    }
    const bytes = await readBodyCapped(res.body, MAX_MANIFEST_BYTES, `manifest ${req.name}:${reference}`);
    const digest = sha256Digest(bytes);
    if (req.ref.kind === 'digest' && digest !== req.ref.digest) {
      throw new PollenError('ERR_DIGEST_MISMATCH', `registry ${target.baseUrl} sent a manifest hashing to ${digest} for ${req.ref.digest}`, { expected: req.ref.digest, actual: digest });
    }
    const mediaType = contentType || mediaTypeOf(bytes);
    await this.remember(digest, bytes, mediaType);
    if (req.ref.kind === 'tag') await this.tags.put(tagKey(req.upstream.host, req.name, req.ref.tag), { digest, mediaType });
    return this.reply('GET', digest, { mediaType, size: bytes.length }, bytes);
  }

  /** The upstream cannot be asked: serve the last digest known for a tag, to a client allowed before. */
  private async offline(req: ManifestRequest, target: UpstreamTarget, cause: PollenError): Promise<MirrorReply> {
    if (req.ref.kind === 'tag' && this.access.isWithinGrace(target)) {
      const last = await this.tags.get(tagKey(req.upstream.host, req.name, req.ref.tag));
      const cached = last && (await this.cached(last.digest));
      if (last && cached) {
        this.logger.warn({ upstream: target.baseUrl, name: req.name, tag: req.ref.tag, digest: last.digest, err: cause.message }, 'upstream unreachable: serving the last known digest for the tag');
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

function tagKey(host: string, name: string, tag: string): string {
  return `${host}/${name}:${tag}`;
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
