// The peer's settings: one table of key, flag, env var, default and help (see src/config.ts).
import { homedir } from 'node:os';
import { join } from 'node:path';
import { validateHostPort, validateHttpUrl, type ConfigValues, type Setting } from '../src/config.ts';
import { hasUserinfo } from '../src/oci/redact-url.ts';
import { parseHostMappings, validateHostMappings } from '../src/oci/registry-hosts.ts';
import { quotaProblem } from '../src/store/quota.ts';
import { durationProblem, parseDuration } from '../src/units.ts';
import { API_LIMITS } from '../src/p2p/supernode-api.ts';
import { DEFAULT_UPLOAD_SLOTS } from './p2p/upload-slots.ts';

/**
 * A registry URL: http(s), and without `user:password@` (it would end up in logs and error
 * bodies; credentials go in --credentials, redacted when the config is logged).
 */
function validateRegistryUrl(flag: string) {
  return (v: string): string | undefined => {
    if (hasUserinfo(v)) return `${flag} URLs must not carry user:password@ (it would reach logs and error messages): give them with --credentials HOST=USER:PASSWORD`;
    return validateHttpUrl(v);
  };
}

function validateSupernodeUrls(v: readonly string[]): string | undefined {
  if (v.some(hasUserinfo)) return '--supernode URLs must not carry user:password@ (it would reach logs): the cluster is joined with --secret';
  return v.map(validateHttpUrl).find((x) => x !== undefined);
}

function validateRegistryMappings(v: readonly string[]): string | undefined {
  const shape = validateHostMappings('--registry')(v);
  if (shape) return shape;
  for (const m of v) {
    const why = validateRegistryUrl('--registry')(m.slice(m.indexOf('=') + 1).trim());
    if (why) return `${m.slice(0, m.indexOf('=')).slice(0, 100)}: ${why}`;
  }
  return undefined;
}


/** Expands a leading `~/` (defaults are written that way so the docs read the same for everyone). */
export function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

export const PEER_SETTINGS = [
  { key: 'listen', type: 'string', flag: 'listen', env: 'POLLEN_LISTEN', default: '127.0.0.1:65001', help: 'address of the registry mirror and HTTP proxy', validate: validateHostPort },
  { key: 'accessLog', type: 'bool', flag: 'access-log', env: 'POLLEN_ACCESS_LOG', default: true, help: 'one info log line per mirror request (method, path, status, bytes, source, duration); false to turn it off' },
  { key: 'metricsListen', type: 'string', flag: 'metrics-listen', env: 'POLLEN_METRICS_LISTEN', default: '127.0.0.1:65003', help: 'address of /metrics, /healthz, /readyz and POST /api/v1/gc (`pollen gc`), kept off the mirror port; loopback by default', validate: validateHostPort },
  { key: 'data', type: 'string', flag: 'data', env: 'POLLEN_DATA', default: '~/.pollen', help: 'data directory (content store, metadata)' },
  { key: 'diskQuota', type: 'string', flag: 'disk-quota', env: 'POLLEN_DISK_QUOTA', default: '80%', help: 'most the content store may hold (its blobs and downloads, not the filesystem\'s usage): a size (20GiB, 500MB) or a share of the filesystem (80%); above it the least recently used blobs are evicted', validate: quotaProblem },
  { key: 'blobTtl', type: 'string', flag: 'blob-ttl', env: 'POLLEN_BLOB_TTL', default: undefined, help: 'evict blobs not read for this long (30m, 6h, 7d); default: only the quota evicts', validate: durationProblem },
  { key: 'upstream', type: 'string', flag: 'upstream', env: 'POLLEN_UPSTREAM', default: undefined, help: 'default upstream registry URL, used when a request names no registry', validate: validateRegistryUrl('--upstream') },
  { key: 'registry', type: 'list', flag: 'registry', env: 'POLLEN_REGISTRY', default: [], help: 'HOST=URL: the URL that reaches registry HOST (for ?ns=HOST and proxy requests; the proxy serves only these and --upstream)', validate: validateRegistryMappings },
  { key: 'credentials', type: 'list', flag: 'credentials', env: 'POLLEN_CREDENTIALS', default: [], help: 'HOST=USER:PASSWORD: static credentials for an upstream, used when the client sends none', secret: true, validate: validateHostMappings('--credentials') },
  { key: 'accessTtlMs', type: 'int', min: 0, flag: 'access-ttl-ms', env: 'POLLEN_ACCESS_TTL_MS', default: 30_000, help: 'how long an upstream access decision (per credential, registry, repository and digest) is trusted' },
  { key: 'accessGraceMs', type: 'int', min: 0, flag: 'access-grace-ms', env: 'POLLEN_ACCESS_GRACE_MS', default: 3_600_000, help: 'how long an expired "allowed" decision still serves cached content while the upstream is unreachable' },
  { key: 'upstreamTimeoutMs', type: 'int', min: 1, flag: 'upstream-timeout-ms', env: 'POLLEN_UPSTREAM_TIMEOUT_MS', default: 30_000, help: 'connect and header timeout for upstream requests' },
  { key: 'supernode', type: 'list', flag: 'supernode', env: 'POLLEN_SUPERNODE', default: [], help: 'supernode URL: joins the P2P cluster (each digest is owned by one of them, by rendezvous hashing)', validate: validateSupernodeUrls },
  { key: 'secret', type: 'string', flag: 'secret', env: 'POLLEN_SECRET', default: undefined, help: 'cluster secret shared by the supernode and the peers, proven on the wire and to the supernode', secret: true },
  { key: 'wire', type: 'string', flag: 'wire', env: 'POLLEN_WIRE', default: '127.0.0.1:65002', help: 'address of the peer wire (BitTorrent protocol; TLS with the cluster secret\'s key when one is set); off loopback it needs a strong --secret', validate: validateHostPort },
  { key: 'wireAdvertise', type: 'string', flag: 'wire-advertise', env: 'POLLEN_WIRE_ADVERTISE', default: undefined, help: 'HOST:PORT other peers dial to reach this wire (default: the wire address, 127.0.0.1 for a wildcard host)', validate: validateHostPort },
  { key: 'uploadSlots', type: 'int', min: 0, max: API_LIMITS.uploadSlots, flag: 'upload-slots', env: 'POLLEN_UPLOAD_SLOTS', default: DEFAULT_UPLOAD_SLOTS, help: 'peers served at once (a slot goes to a peer that wants pieces we hold, BEP 3 interested; the others wait, choked; a blob with none served takes a slot from the blob with the most); keep it at or above the 12 parents a host fetches from' },
  { key: 'uploadRate', type: 'rate', flag: 'upload-rate', env: 'POLLEN_UPLOAD_RATE', default: 0, help: 'upload bandwidth cap for the whole host, in bytes per second or a size per second (50MiB, 100MB/s); 0 = unlimited' },
  { key: 'downloadRate', type: 'rate', flag: 'download-rate', env: 'POLLEN_DOWNLOAD_RATE', default: 0, help: 'download bandwidth cap for the whole host, shared by everything it receives for blobs (pieces from peers and the seed, registry downloads), in bytes per second or a size per second (50MiB); 0 = unlimited' },
  { key: 'wireMaxConnections', type: 'int', min: 1, flag: 'wire-max-connections', env: 'POLLEN_WIRE_MAX_CONNECTIONS', default: 256, help: 'incoming wire connections accepted at once' },
  { key: 'supernodeTimeoutMs', type: 'int', min: 1, flag: 'supernode-timeout-ms', env: 'POLLEN_SUPERNODE_TIMEOUT_MS', default: 5_000, help: 'timeout of a supernode API call' },
  { key: 'p2pStallMs', type: 'int', min: 1, flag: 'p2p-stall-ms', env: 'POLLEN_P2P_STALL_MS', default: 30_000, help: 'a P2P download with no verified piece for this long falls back to the registry' },
  { key: 'faultCorruptUploads', type: 'bool', flag: 'fault-corrupt-uploads', env: 'POLLEN_FAULT_CORRUPT_UPLOADS', default: false, help: 'TEST ONLY: corrupt every block this peer uploads (to test that others ban it)' },
  { key: 'logLevel', type: 'string', flag: 'log-level', env: 'POLLEN_LOG_LEVEL', default: 'info', help: 'log level (fatal, error, warn, info, debug, trace)' },
] as const satisfies readonly Setting[];

export interface PeerConfig {
  readonly listen: string;
  readonly accessLog: boolean;
  readonly metricsListen: string;
  readonly data: string;
  /** As given (`20GiB`, `80%`): resolved against the store's filesystem when the peer starts. */
  readonly diskQuota: string;
  /** 0: no expiry. */
  readonly blobTtlMs: number;
  readonly upstream: string | undefined;
  /** Registry host (as clients name it) → base URL. */
  readonly registries: ReadonlyMap<string, string>;
  /** Registry host → `user:password` used when the client sends no Authorization. */
  readonly credentials: ReadonlyMap<string, string>;
  readonly accessTtlMs: number;
  readonly accessGraceMs: number;
  readonly upstreamTimeoutMs: number;
  readonly supernodes: readonly string[];
  readonly secret: string;
  readonly wire: string;
  readonly wireAdvertise: string | undefined;
  readonly uploadSlots: number;
  /** Bytes per second; 0 = unlimited. */
  readonly uploadRate: number;
  /** Bytes per second; 0 = unlimited. */
  readonly downloadRate: number;
  readonly wireMaxConnections: number;
  readonly supernodeTimeoutMs: number;
  readonly p2pStallMs: number;
  readonly faultCorruptUploads: boolean;
  readonly logLevel: string;
}

export function peerConfigFrom(values: ConfigValues): PeerConfig {
  return Object.freeze({
    listen: values.listen as string,
    accessLog: values.accessLog as boolean,
    metricsListen: values.metricsListen as string,
    data: expandHome(values.data as string),
    diskQuota: values.diskQuota as string,
    blobTtlMs: values.blobTtl === undefined ? 0 : parseDuration(values.blobTtl as string),
    upstream: (values.upstream as string | undefined)?.replace(/\/+$/, ''),
    registries: parseHostMappings(values.registry as readonly string[]),
    credentials: parseHostMappings(values.credentials as readonly string[]),
    accessTtlMs: values.accessTtlMs as number,
    accessGraceMs: values.accessGraceMs as number,
    upstreamTimeoutMs: values.upstreamTimeoutMs as number,
    supernodes: (values.supernode as readonly string[]).map((u) => u.replace(/\/+$/, '')),
    secret: (values.secret as string | undefined) ?? '',
    wire: values.wire as string,
    wireAdvertise: values.wireAdvertise as string | undefined,
    uploadSlots: values.uploadSlots as number,
    uploadRate: values.uploadRate as number,
    downloadRate: values.downloadRate as number,
    wireMaxConnections: values.wireMaxConnections as number,
    supernodeTimeoutMs: values.supernodeTimeoutMs as number,
    p2pStallMs: values.p2pStallMs as number,
    faultCorruptUploads: values.faultCorruptUploads as boolean,
    logLevel: values.logLevel as string,
  });
}
