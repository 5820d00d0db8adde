// JSON schemas of the supernode API's request bodies and parameters (fastify validates them before a
// handler runs; a body that does not match is a 400 with the OCI error body). Every array, string
// and number is bounded. Properties not listed are dropped (fastify's removeAdditional), so an
// older supernode accepts a newer peer's extra fields.
import { MAX_PIECES } from '../../src/p2p/metainfo.ts';
import { API_LIMITS, PEER_ID_PATTERN } from '../../src/p2p/supernode-api.ts';
import { TASK_NAME_HEX } from '../../src/p2p/sync-answer.ts';

const DIGEST = { type: 'string', pattern: '^sha256:[a-f0-9]{64}$' } as const;
const PEER_ID = { type: 'string', pattern: PEER_ID_PATTERN } as const;
/** A bitfield of at most MAX_PIECES bits, base64. */
const BITFIELD = { type: 'string', maxLength: 4 * Math.ceil(Math.ceil(MAX_PIECES / 8) / 3), pattern: '^[A-Za-z0-9+/]*={0,2}$' } as const;
const PIECE_INDEX = { type: 'integer', minimum: 0, maximum: MAX_PIECES - 1 } as const;

const BYTES = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;

/** A heartbeat's report (src/p2p/supernode-api.ts HeartbeatBody); an empty body is fine. */
export const HEARTBEAT_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    version: { type: 'string', maxLength: 64, pattern: '^[A-Za-z0-9.+_-]*$' },
    storeBytes: BYTES,
    storeQuotaBytes: BYTES,
    uploadedBytes: BYTES,
    downloadedBytes: BYTES,
  },
} as const;

export const DIGEST_PARAMS = {
  type: 'object',
  required: ['digest'],
  properties: { digest: DIGEST },
} as const;

export const PIECE_PARAMS = {
  type: 'object',
  required: ['digest', 'index'],
  properties: { digest: DIGEST, index: { type: 'string', pattern: '^(0|[1-9][0-9]{0,5})$' } },
} as const;

/** A layout's piece size as a peer names it (metainfo.ts isLayout says whether it is one for the blob). */
const PIECE_SIZE = { type: 'integer', minimum: 1, maximum: 2 ** 31 } as const;

export const REGISTER_BODY = {
  type: 'object',
  required: ['peerId', 'wireAddr', 'uploadSlots'],
  additionalProperties: false,
  properties: {
    peerId: PEER_ID,
    wireAddr: { type: 'string', minLength: 3, maxLength: 262 },
    uploadSlots: { type: 'integer', minimum: 0, maximum: API_LIMITS.uploadSlots },
    holdings: {
      type: 'array',
      maxItems: API_LIMITS.holdings,
      items: { type: 'object', required: ['digest', 'pieces'], additionalProperties: false, properties: { digest: DIGEST, pieces: BITFIELD, pieceSize: PIECE_SIZE } },
    },
  },
} as const;

/** Where the seed fetches from. The seed checks it against what the supernode may reach. */
// The registry by host key only: the seed maps it to a URL of its own configuration (seed-upstreams.ts).
const UPSTREAM = {
  type: 'object',
  required: ['registry', 'name'],
  additionalProperties: false,
  properties: {
    registry: { type: 'string', minLength: 1, maxLength: 255 },
    name: { type: 'string', minLength: 1, maxLength: 255 },
    authorization: { type: 'string', maxLength: 8192 },
  },
} as const;

const WANT_SEED = { type: 'integer', minimum: 0, maximum: API_LIMITS.wantSeed } as const;

export const TASK_BODY = {
  type: 'object',
  required: ['digest', 'upstream'],
  additionalProperties: false,
  properties: {
    digest: DIGEST,
    sizeHint: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    upstream: UPSTREAM,
    first: { type: 'object', required: ['wantSeed'], additionalProperties: false, properties: { wantSeed: WANT_SEED } },
    report: HEARTBEAT_BODY,
    terse: { type: 'boolean' },
    withoutHashes: { type: 'boolean' },
    packParents: { type: 'boolean' },
    pieceSize: PIECE_SIZE,
  },
} as const;

const PARENTS = { type: 'array', maxItems: API_LIMITS.reportedParents, items: PEER_ID } as const;

export const SYNC_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    have: { type: 'array', maxItems: MAX_PIECES, items: PIECE_INDEX },
    havePacked: BITFIELD,
    wantSeed: WANT_SEED,
    badParents: PARENTS,
    corruptParents: PARENTS,
    starved: { type: 'boolean' },
    declined: { type: 'array', maxItems: API_LIMITS.declinedGrants, items: PIECE_INDEX },
    knownHashes: { type: 'number' },
    wantHashList: { type: 'boolean' },
    wantParents: { type: 'integer', minimum: 0, maximum: 64 },
    trimHashes: { type: 'boolean' },
    packHashes: { type: 'boolean' },
    terse: { type: 'boolean' },
    packParents: { type: 'boolean' },
    leave: { type: 'boolean' },
  },
} as const;

/** A task's short name in a batch item: the first hex digits of its sha256 digest. */
const TASK_NAME = { type: 'string', pattern: `^[a-f0-9]{${TASK_NAME_HEX}}$` } as const;

/** Several tasks' syncs: each item is a SYNC_BODY with its digest or its task's short name. */
export const SYNC_BATCH_BODY = {
  type: 'object',
  required: ['syncs'],
  additionalProperties: false,
  properties: {
    syncs: {
      type: 'array',
      minItems: 1,
      maxItems: API_LIMITS.syncsPerBatch,
      // Each names its task once: by digest, or by its short name (src/p2p/sync-answer.ts taskName).
      items: { ...SYNC_BODY, oneOf: [{ required: ['digest'] }, { required: ['task'] }], properties: { ...SYNC_BODY.properties, digest: DIGEST, task: TASK_NAME } },
    },
    report: HEARTBEAT_BODY,
  },
} as const;

export const WORK_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    reports: {
      type: 'array',
      maxItems: 1_000,
      items: {
        type: 'object',
        required: ['job', 'digest', 'ok'],
        additionalProperties: false,
        properties: {
          job: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
          digest: DIGEST,
          ok: { type: 'boolean' },
          error: { type: 'string', maxLength: 16_384 },
        },
      },
    },
  },
} as const;
