// The seed's one way to the registry: HEAD (may this credential read this blob, and how large is it
// said to be) and GET of a blob in a configured registry, with the requester's credential as is (a
// 401 comes back rather than being answered with credentials of the supernode's). Unit tests use an
// in-memory fetcher; production goes through RegistryClient.
import type { Dispatcher } from 'undici';
import type { Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import { RegistryClient, headerValue } from '../../src/oci/registry-client.ts';
import type { SeedSource } from './seed-upstreams.ts';

export interface SeedBody extends AsyncIterable<Uint8Array> {
  destroy(): void;
}

export interface SeedFetcher {
  /** The registry's answer to HEAD /v2/<name>/blobs/<digest>: status and declared Content-Length. */
  head(source: SeedSource, digest: Digest, signal: AbortSignal): Promise<{ status: number; size: number | undefined }>;
  /** GET of the whole blob; the caller reads or destroys `body`. */
  get(source: SeedSource, digest: Digest, signal: AbortSignal): Promise<{ status: number; size: number | undefined; body: SeedBody }>;
}

function declaredLength(v: string | string[] | undefined): number | undefined {
  const s = headerValue(v);
  if (s === undefined || !/^\d{1,16}$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function registrySeedFetcher(deps: { dispatcher?: Dispatcher } = {}): SeedFetcher {
  const send = (method: 'GET' | 'HEAD', source: SeedSource, digest: Digest, signal: AbortSignal) => {
    const client = new RegistryClient({ dispatcher: deps.dispatcher }, { baseUrl: source.baseUrl, userAgent: 'pollen-seed' });
    const headers: Record<string, string> = {};
    if (source.authorization) headers.authorization = source.authorization;
    return client.request(method, `/v2/${source.name}/blobs/${digest}`, { headers, signal, scope: `repository:${source.name}:pull`, relayAuth: true });
  };
  return {
    async head(source, digest, signal) {
      const res = await send('HEAD', source, digest, signal);
      await res.body.dump();
      return { status: res.statusCode, size: declaredLength(res.headers['content-length']) };
    },
    async get(source, digest, signal) {
      const res = await send('GET', source, digest, signal);
      if (res.statusCode !== 200) await res.body.dump();
      return { status: res.statusCode, size: declaredLength(res.headers['content-length']), body: res.body };
    },
  };
}

/** The error for a registry's non-200 answer about a blob. */
export function blobStatusError(status: number, source: SeedSource, digest: Digest): PollenError {
  const where = { upstream: source.registry, name: source.name };
  if (status === 401) return new PollenError('ERR_UNAUTHORIZED', `registry ${source.registry} requires authentication for blob ${digest} of ${source.name}`, where);
  if (status === 403) return new PollenError('ERR_DENIED', `registry ${source.registry} denied access to blob ${digest} of ${source.name}`, where);
  if (status === 404) return new PollenError('ERR_BLOB_UNKNOWN', `blob ${digest} not found in ${source.name} at ${source.registry}`, where);
  return new PollenError('ERR_UPSTREAM_UNAVAILABLE', `registry ${source.registry} answered ${status} for blob ${digest}`, { ...where, status });
}
