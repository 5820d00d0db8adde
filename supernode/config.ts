// The supernode's settings: one table of key, flag, env var, default and help (see src/config.ts).
import { homedir } from 'node:os';
import { join } from 'node:path';
import { validateHostPort, type ConfigValues, type Setting } from '../src/config.ts';
import { parseHostMappings, registryUrlProblem, validateHostMappings } from '../src/oci/registry-hosts.ts';
import { quotaProblem } from '../src/store/quota.ts';
import { durationProblem, parseDuration } from '../src/units.ts';
import { SMALL_PIECES_FROM_PEERS } from '../src/p2p/metainfo.ts';
import { DEFAULT_MAX_PARENTS, MAX_OFFERED_PARENTS } from './p2p/scheduler-options.ts';
import { DEFAULT_PEER_REQUEST_RATE } from './http/peer-request-budget.ts';
import { DEFAULT_SYNC_ANSWER_BYTES_PER_S, DEFAULT_SYNC_RATE } from './p2p/sync-pacer.ts';

export const DEFAULT_SEED_MAX_BLOB_BYTES = 64 * 1024 * 1024 * 1024;

export const SUPERNODE_SETTINGS = [
  { key: 'listen', type: 'string', flag: 'listen', env: 'POLLEN_SUPERNODE_LISTEN', default: '127.0.0.1:8002', help: 'address of the cluster API (peers): TLS 1.3 keyed by --secret; without a secret only a loopback address is allowed', validate: validateHostPort },
  { key: 'adminListen', type: 'string', flag: 'admin-listen', env: 'POLLEN_SUPERNODE_ADMIN_LISTEN', default: '127.0.0.1:8003', help: 'address of the admin API (plain HTTP: /healthz, /readyz, /metrics, the status page, stats, the preheat jobs API behind --admin-token); keep it on loopback or a private network', validate: validateHostPort },
  { key: 'data', type: 'string', flag: 'data', env: 'POLLEN_SUPERNODE_DATA', default: '~/.pollen/supernode', help: 'data directory (metadata in level, seed blobs, the piece key piece-key.pem)' },
  { key: 'secret', type: 'string', flag: 'secret', env: 'POLLEN_SECRET', default: undefined, help: 'cluster secret shared by the supernode and the peers: keys the TLS of the cluster API (`pollen secret` prints one)', secret: true },
  { key: 'adminToken', type: 'string', flag: 'admin-token', env: 'POLLEN_ADMIN_TOKEN', default: undefined, help: 'bearer token of the jobs API (preheat); without it the jobs API is disabled', secret: true },
  { key: 'upstream', type: 'string', flag: 'upstream', env: 'POLLEN_UPSTREAM', default: undefined, help: 'default registry URL of the seed (reached by its own HOST:PORT, as the peers\' --upstream)', validate: registryUrlProblem },
  { key: 'registry', type: 'list', flag: 'registry', env: 'POLLEN_REGISTRY', default: [], help: 'HOST=URL: a registry the seed may fetch from (peers name it by HOST); no other registry is reached', validate: validateHostMappings('--registry', { urls: true }) },
  { key: 'seedMaxBlobBytes', type: 'int', min: 1, flag: 'seed-max-blob-bytes', env: 'POLLEN_SEED_MAX_BLOB_BYTES', default: DEFAULT_SEED_MAX_BLOB_BYTES, help: 'largest blob the seed fetches (a larger size declared by the registry is refused)' },
  { key: 'seedDiskQuota', type: 'string', flag: 'seed-disk-quota', env: 'POLLEN_SEED_DISK_QUOTA', default: '80%', help: 'most the seed\'s store may hold: a size (500GiB) or a share of its filesystem (80%); above it the least recently used blobs nothing is reading are evicted', validate: quotaProblem },
  { key: 'seedBlobTtl', type: 'string', flag: 'seed-blob-ttl', env: 'POLLEN_SEED_BLOB_TTL', default: undefined, help: 'evict seed blobs not read for this long (30m, 6h, 7d); default: only the quota evicts', validate: durationProblem },
  { key: 'seedRegistryRate', type: 'rate', flag: 'seed-registry-rate', env: 'POLLEN_SEED_REGISTRY_RATE', default: 0, help: 'cap of the bandwidth the seed takes from registries, shared by all its fetches, in bytes per second or a size per second (50MiB); 0 = unlimited' },
  { key: 'peerRequestRate', type: 'int', min: 0, flag: 'peer-request-rate', env: 'POLLEN_PEER_REQUEST_RATE', default: DEFAULT_PEER_REQUEST_RATE, help: "calls of the cluster API a peer may make per second (heartbeats, tasks, syncs; not seed pieces, each of which sent whole on the peer's seed lease pays for one call), an answer over 4 KiB counting one call per 4 KiB it carries, with a burst of 5 s or 256; faster ones are answered 429. 0 = unlimited" },
  { key: 'syncRate', type: 'int', min: 0, flag: 'sync-rate', env: 'POLLEN_SYNC_RATE', default: DEFAULT_SYNC_RATE, help: 'syncs per second the supernode aims at: when its peers would sync more often, each answer asks them to wait for the next free slot of a line of this many a second (at most 4 s ahead) and offers more parents, and busy peers heart-beat less often; 0 = not counted (with --sync-answer-rate 0 too: no pacing)' },
  { key: 'syncAnswerRate', type: 'rate', flag: 'sync-answer-rate', env: 'POLLEN_SYNC_ANSWER_RATE', default: DEFAULT_SYNC_ANSWER_BYTES_PER_S, help: "bandwidth of the supernode host's uplink the sync answers aim at (they share it with the seed's pieces), in bytes per second or a size per second (2MB): the line of --sync-rate slots is spaced by what an answer carries as well; default 40 Mbit/s (on a 100 Mbit/s host with a swarm of a few thousand peers, 1.25MB serves better); 0 = not counted" },
  { key: 'maxParents', type: 'int', min: 1, max: MAX_OFFERED_PARENTS, flag: 'max-parents', env: 'POLLEN_MAX_PARENTS', default: DEFAULT_MAX_PARENTS, help: 'parents offered to a peer per 250 ms since its last offer (at least this many an answer; 1 to 8)' },
  { key: 'smallPiecesFrom', type: 'int', min: 0, flag: 'small-pieces-from', env: 'POLLEN_SMALL_PIECES_FROM', default: SMALL_PIECES_FROM_PEERS, help: 'live peers from which the seed gives a blob it begins 128 KiB pieces instead of 512 KiB (a deep swarm passes pieces through more hops in shorter steps; a small one gains nothing from it); a blob keeps the layout it began with' },
  { key: 'logLevel', type: 'string', flag: 'log-level', env: 'POLLEN_LOG_LEVEL', default: 'info', help: 'log level (fatal, error, warn, info, debug, trace)' },
] as const satisfies readonly Setting[];

export interface SupernodeConfig {
  readonly listen: string;
  readonly adminListen: string;
  readonly data: string;
  readonly secret: string | undefined;
  readonly adminToken?: string;
  /** Default registry URL (its host is its key). */
  readonly upstream?: string | undefined;
  /** Registry host → base URL: with `upstream`, the only registries the seed reaches (none when both are absent). */
  readonly registries?: ReadonlyMap<string, string>;
  /** Default DEFAULT_SEED_MAX_BLOB_BYTES. */
  readonly seedMaxBlobBytes?: number;
  /** `80%`, `500GiB` (see src/store/quota.ts); undefined: no quota. */
  readonly seedDiskQuota?: string | undefined;
  /** 0: no time-based eviction. */
  readonly seedBlobTtlMs?: number;
  /** Bytes per second the seed reads from registries, all fetches together; 0 (default) = unlimited. */
  readonly seedRegistryRate?: number;
  readonly maxParents: number;
  /** Live peers from which new blobs get SMALL_PIECE_BYTES pieces; default SMALL_PIECES_FROM_PEERS. */
  readonly smallPiecesFrom?: number;
  /** Cluster API calls per second per peer (0 = unlimited). */
  readonly peerRequestRate?: number;
  /** Syncs per second the pacing aims at (0 = no pacing); default DEFAULT_SYNC_RATE. */
  readonly syncRate?: number;
  /** Bytes per second of sync answers the pacing aims at (0 = not counted); default DEFAULT_SYNC_ANSWER_BYTES_PER_S. */
  readonly syncAnswerRate?: number;
  readonly logLevel: string;
}

export function supernodeConfigFrom(values: ConfigValues): SupernodeConfig {
  const data = values.data as string;
  return Object.freeze({
    listen: values.listen as string,
    adminListen: values.adminListen as string,
    data: data === '~' || data.startsWith('~/') ? join(homedir(), data.slice(1)) : data,
    secret: values.secret as string | undefined,
    adminToken: (values.adminToken as string | undefined) || undefined,
    upstream: (values.upstream as string | undefined)?.replace(/\/+$/, ''),
    registries: parseHostMappings(values.registry as readonly string[]),
    seedMaxBlobBytes: values.seedMaxBlobBytes as number,
    seedDiskQuota: values.seedDiskQuota as string | undefined,
    seedBlobTtlMs: values.seedBlobTtl === undefined ? 0 : parseDuration(values.seedBlobTtl as string),
    seedRegistryRate: values.seedRegistryRate as number,
    maxParents: values.maxParents as number,
    smallPiecesFrom: values.smallPiecesFrom as number,
    peerRequestRate: values.peerRequestRate as number,
    syncRate: values.syncRate as number,
    syncAnswerRate: values.syncAnswerRate as number,
    logLevel: values.logLevel as string,
  });
}
