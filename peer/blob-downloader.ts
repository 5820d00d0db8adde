// The seam between the mirror and where blob bytes come from. The mirror asks for a blob it does
// not hold; a BlobDownloader starts filling the content store and hands back a PartialBlob as soon
// as the blob's size is known, so the mirror can stream it to clients while it downloads.
// Implementations: UpstreamDownloader (straight from the registry) and, with a supernode, the P2P
// downloader, which falls back to the UpstreamDownloader whenever P2P cannot make progress.
import type { Digest } from '../src/digest.ts';
import type { PartialBlob } from '../src/partial-blob.ts';

/** Where the blob can be fetched from the registry, with the requesting client's credentials. */
export interface UpstreamTarget {
  /**
   * The registry's host as clients name it (`ns`, the host of the default upstream): what the peer
   * tells the supernode, whose seed maps it to a URL of its own. Defaults to the host of `baseUrl`.
   */
  readonly registry?: string;
  /** Registry base URL, e.g. `https://registry.example:5000`. */
  readonly baseUrl: string;
  /** Repository name in that registry. */
  readonly name: string;
  /** The client's Authorization header (or the configured static credentials), if any. */
  readonly authorization: string | undefined;
}

export interface BlobFetchRequest {
  readonly digest: Digest;
  /** The size when already known (from an access-check HEAD). */
  readonly sizeHint: number | undefined;
  readonly upstream: UpstreamTarget;
}

export interface BlobDownloader {
  /**
   * Starts the download. Resolves with the partial blob once its size is known; the partial is
   * filled, verified and committed in the background (or failed). Rejects when the download cannot
   * start (e.g. the registry refuses or does not have the blob).
   */
  start(request: BlobFetchRequest): Promise<PartialBlob>;
}
