// One error class for all of Pollen. Each code has a kind that drives retry, ban and HTTP mapping,
// and a human message. HTTP status codes and OCI error bodies are derived only at the HTTP edge
// (see src/oci/error-body.ts), never here.

export type ErrorKind =
  | 'not_found'
  | 'invalid'
  | 'unavailable'
  | 'integrity'
  | 'unauthorized'
  | 'denied'
  | 'aborted'
  | 'too_large'
  | 'internal';

/** Every error code Pollen raises, with its kind and a short description (listed in the README). */
export const ERROR_CODES = {
  ERR_INVALID_NAME: { kind: 'invalid', description: 'a repository name does not match the distribution name grammar' },
  ERR_INVALID_REFERENCE: { kind: 'invalid', description: 'an image reference, tag or digest cannot be parsed' },
  ERR_INVALID_DIGEST: { kind: 'invalid', description: 'a digest is malformed or uses an unsupported algorithm' },
  ERR_INVALID_RANGE: { kind: 'invalid', description: 'a Range header cannot be satisfied for the blob' },
  ERR_INVALID_CONFIG: { kind: 'invalid', description: 'a configuration value is missing or malformed' },
  ERR_INVALID_REQUEST: { kind: 'invalid', description: 'a request is malformed (path, header, body or query)' },
  ERR_INVALID_MANIFEST: { kind: 'invalid', description: 'a manifest or index cannot be parsed or is not of a known media type' },
  ERR_UNKNOWN_UPSTREAM: { kind: 'invalid', description: 'no upstream registry is configured for the requested host' },
  ERR_MANIFEST_UNKNOWN: { kind: 'not_found', description: 'the manifest is not known upstream or locally' },
  ERR_BLOB_UNKNOWN: { kind: 'not_found', description: 'the blob is not known upstream or locally' },
  ERR_NAME_UNKNOWN: { kind: 'not_found', description: 'the repository is not known upstream' },
  ERR_NOT_FOUND: { kind: 'not_found', description: 'the requested object does not exist' },
  ERR_MANIFEST_TOO_LARGE: { kind: 'too_large', description: 'a manifest exceeds the 4 MiB limit' },
  ERR_MESSAGE_TOO_LARGE: { kind: 'too_large', description: 'a peer or client message exceeds its size cap' },
  ERR_UNAUTHORIZED: { kind: 'unauthorized', description: 'the upstream registry requires credentials the client did not give' },
  ERR_DENIED: { kind: 'denied', description: 'the upstream registry refused access with the given credentials' },
  ERR_PROXY_TARGET_DENIED: { kind: 'denied', description: 'the forward proxy serves configured registries only (--registry, --upstream); other hosts are refused without a connection' },
  ERR_TOO_MANY_REQUESTS: { kind: 'unavailable', description: "a peer called the supernode's cluster API faster than its allowance (--peer-request-rate); it is answered 429 with the seconds to wait (Retry-After, detail.retryAfter), and a transfer's next routine sync waits them (4 s at most)" },
  ERR_PROXY_BUSY: { kind: 'unavailable', description: 'the forward proxy has as many CONNECT tunnels open as it allows (256); try again when some close' },
  ERR_UPSTREAM_UNAVAILABLE: { kind: 'unavailable', description: 'the upstream registry cannot be reached or answered with a server error' },
  ERR_UPSTREAM_PROTOCOL: { kind: 'unavailable', description: 'the upstream registry answered with something that breaks the distribution protocol' },
  ERR_DIGEST_MISMATCH: { kind: 'integrity', description: 'content did not hash to its expected digest' },
  ERR_SIZE_MISMATCH: { kind: 'integrity', description: 'content was shorter or longer than its declared size' },
  ERR_BLOB_TOO_LARGE: { kind: 'too_large', description: "a registry declares a blob larger than the seed's limit (--seed-max-blob-bytes)" },
  ERR_SEED_NOT_ADMITTED: { kind: 'denied', description: "a peer asked the seed for a blob's pieces or metainfo without being admitted for it (its task was not created, or has lapsed)" },
  ERR_PEER_PROTOCOL: { kind: 'unavailable', description: 'a peer broke the wire protocol, failed the cluster secret check or closed the connection' },
  ERR_PIECE_DIGEST_MISMATCH: { kind: 'integrity', description: 'a piece from a peer or the seed did not hash to its sha256 in the metainfo' },
  ERR_DISK_QUOTA: { kind: 'unavailable', description: 'the content store is at its disk quota (--disk-quota) and every blob it could evict is in use' },
  ERR_SUPERNODE_UNAVAILABLE: { kind: 'unavailable', description: 'no supernode could be reached or it answered with an error' },
  ERR_LAYER_INVALID: { kind: 'invalid', description: 'a layer is not a valid (compressed) tar or holds an entry that cannot be applied' },
  ERR_LAYER_FOREIGN: { kind: 'invalid', description: 'a foreign/non-distributable layer cannot be fetched from the registry' },
  ERR_LAYER_TOO_LARGE: { kind: 'too_large', description: 'a layer expands beyond the uncompressed size or compression ratio limit (a decompression bomb)' },
  ERR_DIFFID_MISMATCH: { kind: 'integrity', description: "an uncompressed layer did not hash to the image config's diffID" },
  ERR_SNAPSHOT_IN_USE: { kind: 'invalid', description: 'a snapshot is still used by a bundle or a child snapshot' },
  ERR_CLUSTER_UNAUTHORIZED: { kind: 'unauthorized', description: "a supernode API call without this peer's own token (from its registration), or to a path no route of that listener declares" },
  ERR_PEER_ID_TAKEN: { kind: 'denied', description: "a peer id that a live peer holds was registered again without that peer's token" },
  ERR_ADMIN_UNAUTHORIZED: { kind: 'unauthorized', description: 'the supernode jobs API needs the admin token (Authorization: Bearer TOKEN), or has none configured' },
  ERR_ILLEGAL_TRANSITION: { kind: 'invalid', description: 'a preheat job or task state change that its state machine does not allow (e.g. cancelling a finished job)' },
  ERR_PLATFORM_UNKNOWN: { kind: 'not_found', description: 'an image index has no manifest for the requested platform' },
  ERR_NO_PEERS: { kind: 'unavailable', description: 'a preheat job to all_peers found no live peer matching its selection' },
  ERR_JOB_LIMIT: { kind: 'too_large', description: 'a preheat job exceeds a limit (blobs per job, active jobs, selection size)' },
  ERR_JOB_INCOMPLETE: { kind: 'unavailable', description: 'some selected peers of a preheat job could not get every blob (after retries)' },
  ERR_JOB_TIMEOUT: { kind: 'unavailable', description: 'a preheat job did not finish within its timeout' },
  ERR_JOB_INTERRUPTED: { kind: 'aborted', description: 'a preheat job could not resume after a supernode restart (its credentials are never stored)' },
  ERR_ABORTED: { kind: 'aborted', description: 'the operation was cancelled' },
  ERR_CLOSED: { kind: 'aborted', description: 'the component was closed while the operation ran' },
  ERR_INTERNAL: { kind: 'internal', description: 'an unexpected internal failure (a bug: please report it)' },
} as const satisfies Record<string, { kind: ErrorKind; description: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class PollenError extends Error {
  override readonly name = 'PollenError';
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  /** Structured detail for logs and the OCI error body's `detail`; never holds credentials. */
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, detail: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.kind = ERROR_CODES[code].kind;
    this.detail = Object.freeze({ ...detail });
  }
}

export function isPollenError(err: unknown, code?: ErrorCode): err is PollenError {
  return err instanceof PollenError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a PollenError, keeping the original as the cause. */
export function toPollenError(err: unknown, fallback: ErrorCode = 'ERR_INTERNAL'): PollenError {
  if (err instanceof PollenError) return err;
  if (isAbortError(err)) return new PollenError('ERR_ABORTED', 'operation aborted', {}, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new PollenError(fallback, message, {}, { cause: err });
}

/**
 * The reason to abort with where no one reads it. `AbortController.abort()` without one builds a
 * DOMException, stack and all, per call: on the bed (V8 profiles of every daemon, N = 16, 256 MiB)
 * the aborts of completed requests and of cancelled seed fetches, and timers of answered ones
 * firing, came to ~0.5 % of the peers' CPU. One shared instance: an `AbortError` as isAbortError
 * sees it.
 */
export const ABORTED: Error = Object.assign(new Error('operation aborted'), { name: 'AbortError' });

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR');
}

/** The README's table of error codes, generated from ERROR_CODES so docs and code agree. */
export function errorCodesMarkdown(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, v]) => `| \`${code}\` | ${v.kind} | ${v.description} |`);
  return ['| code | kind | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
