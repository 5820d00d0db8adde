// The body of a task request: which registry object the blob is, named as the supernode knows
// registries (by host key, never a URL: the supernode reaches only the registries it is configured
// with), and the client's own credential, with which the supernode asks the registry whether this
// client may read this blob before it hands out metainfo or pieces.
import type { TaskRequest } from '../../src/p2p/supernode-api.ts';
import type { BlobFetchRequest } from '../blob-downloader.ts';

export function taskRequest(peerId: string, request: BlobFetchRequest, size: number | undefined): TaskRequest {
  const { upstream } = request;
  return {
    peerId,
    digest: request.digest,
    sizeHint: size,
    upstream: {
      registry: upstream.registry ?? new URL(upstream.baseUrl).host,
      name: upstream.name,
      ...(upstream.authorization ? { authorization: upstream.authorization } : {}),
    },
  };
}
