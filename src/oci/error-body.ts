// The HTTP edge of PollenError: status codes and OCI distribution error bodies
// (`{"errors":[{"code","message","detail"}]}`). Only the fastify boundary calls this.
import type { ErrorCode, PollenError } from '../errors.ts';

const OCI_CODES: Partial<Record<ErrorCode, [status: number, ociCode: string]>> = {
  ERR_INVALID_NAME: [400, 'NAME_INVALID'],
  ERR_INVALID_REFERENCE: [400, 'MANIFEST_INVALID'],
  ERR_INVALID_DIGEST: [400, 'DIGEST_INVALID'],
  ERR_INVALID_RANGE: [416, 'RANGE_INVALID'],
  ERR_INVALID_REQUEST: [400, 'UNSUPPORTED'],
  ERR_INVALID_MANIFEST: [400, 'MANIFEST_INVALID'],
  ERR_UNKNOWN_UPSTREAM: [400, 'NAME_UNKNOWN'],
  ERR_MANIFEST_UNKNOWN: [404, 'MANIFEST_UNKNOWN'],
  ERR_BLOB_UNKNOWN: [404, 'BLOB_UNKNOWN'],
  ERR_NAME_UNKNOWN: [404, 'NAME_UNKNOWN'],
  ERR_NOT_FOUND: [404, 'NOT_FOUND'],
  ERR_MANIFEST_TOO_LARGE: [413, 'SIZE_INVALID'],
  ERR_MESSAGE_TOO_LARGE: [413, 'SIZE_INVALID'],
  ERR_UNAUTHORIZED: [401, 'UNAUTHORIZED'],
  ERR_DENIED: [403, 'DENIED'],
  ERR_PROXY_TARGET_DENIED: [403, 'DENIED'],
  ERR_PROXY_BUSY: [503, 'UNAVAILABLE'],
  ERR_TOO_MANY_REQUESTS: [429, 'TOOMANYREQUESTS'],
  ERR_UPSTREAM_UNAVAILABLE: [502, 'UNAVAILABLE'],
  ERR_UPSTREAM_PROTOCOL: [502, 'UNAVAILABLE'],
  ERR_DIGEST_MISMATCH: [502, 'DIGEST_INVALID'],
  ERR_SIZE_MISMATCH: [502, 'SIZE_INVALID'],
  ERR_DISK_QUOTA: [507, 'UNAVAILABLE'],
  ERR_ABORTED: [499, 'UNAVAILABLE'],
  ERR_CLOSED: [503, 'UNAVAILABLE'],
};

export interface OciErrorBody {
  errors: Array<{ code: string; message: string; detail: unknown }>;
}

export function httpStatusOf(err: PollenError): number {
  return OCI_CODES[err.code]?.[0] ?? 500;
}

export function ociErrorBody(err: PollenError): OciErrorBody {
  const ociCode = OCI_CODES[err.code]?.[1] ?? 'UNKNOWN';
  return { errors: [{ code: ociCode, message: err.message, detail: { pollenCode: err.code, ...err.detail } }] };
}
