// Validation of a preheat job's `args` (see src/preheat/jobs-api.ts): the target registry and
// image, platform, scope, peer selection and limits, with clear errors naming the field. Registry
// credentials are split off: they live in memory only and are never stored or echoed.
import { PollenError } from '../../src/errors.ts';
import { isValidName, parseImageReference, parseManifestRef } from '../../src/oci/names.ts';
import { PREHEAT_SCOPES, type PreheatArgsBody, type PreheatScope } from '../../src/preheat/jobs-api.ts';
import { DEFAULT_PLATFORM, parsePlatform } from './preheat-resolver.ts';

export const DEFAULT_CONCURRENT_TASKS = 8;
export const MAX_CONCURRENT_TASKS = 100;
export const DEFAULT_CONCURRENT_PEERS = 64;
export const MAX_CONCURRENT_PEERS = 1_000;
export const DEFAULT_JOB_TIMEOUT_MS = 60 * 60_000;
export const MAX_JOB_TIMEOUT_MS = 24 * 60 * 60_000;
const MAX_SELECTED_IDS = 10_000;
const MAX_HEADERS = 32;

export interface PeerSelection {
  readonly ids?: readonly string[];
  readonly ips?: readonly string[];
  readonly count?: number;
  readonly percentage?: number;
}

export interface PreheatSpec {
  /**
   * `registry` is the host key the supernode's --registry/--upstream list must know (the seed and
   * the resolution reach the URL configured for it); `baseUrl` is the URL as the job named it, shown
   * in the job's task URLs only.
   */
  readonly target: { readonly registry: string; readonly baseUrl: string; readonly name: string; readonly reference: string };
  readonly platform: string;
  readonly scope: PreheatScope;
  readonly selection: PeerSelection;
  readonly concurrentTasks: number;
  readonly concurrentPeers: number;
  readonly timeoutMs: number;
}

export interface PreheatSecrets {
  readonly headers: Readonly<Record<string, string>>;
  readonly credentials?: { readonly username: string; readonly password: string };
}

function bad(message: string): never {
  throw new PollenError('ERR_INVALID_REQUEST', message);
}

function optInt(v: unknown, what: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null || v === 0) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) bad(`args.${what} must be an integer from ${min} to ${max}`);
  return v as number;
}

function strings(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length > MAX_SELECTED_IDS || v.some((s) => typeof s !== 'string' || s.length === 0 || s.length > 256)) bad(`args.${what} must be a list of non-empty strings`);
  return (v as string[]).length > 0 ? [...(v as string[])] : undefined;
}

const LOOPBACK = /^(localhost|127(\.\d+){3}|\[::1\])(:\d+)?$/;

/** The registry base URL for a host as written in an image reference. */
export function registryBaseUrl(host: string): string {
  if (host === 'docker.io') return 'https://registry-1.docker.io';
  return `${LOOPBACK.test(host) ? 'http' : 'https'}://${host}`;
}

function target(args: PreheatArgsBody): PreheatSpec['target'] {
  if (typeof args.url === 'string' && args.url !== '') {
    const m = /^(https?:\/\/[^/?#]+)\/v2\/(.+)\/manifests\/([^/?#]+)$/.exec(args.url);
    if (!m || !isValidName(m[2]!)) bad('args.url must be a manifest URL: http(s)://HOST/v2/NAME/manifests/TAG-OR-DIGEST');
    if (m![1]!.includes('@')) bad('args.url must not carry credentials: give args.username and args.password');
    parseManifestRef(m![3]!);
    return { registry: new URL(m![1]!).host, baseUrl: m![1]!, name: m![2]!, reference: m![3]! };
  }
  if (typeof args.image === 'string' && args.image !== '') {
    const ref = parseImageReference(args.image);
    return { registry: ref.host, baseUrl: registryBaseUrl(ref.host), name: ref.name, reference: ref.digest ?? ref.tag ?? 'latest' };
  }
  return bad('args.url (a manifest URL) or args.image (an image reference) is required');
}

export function parsePreheatArgs(raw: unknown): { spec: PreheatSpec; secrets: PreheatSecrets; echo: Record<string, unknown> } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('args must be an object');
  const args = raw as PreheatArgsBody;
  if (args.type !== undefined && args.type !== '' && args.type !== 'image') bad(`args.type ${JSON.stringify(String(args.type).slice(0, 32))} is not supported: Pollen preheats images only`);
  const scope = (args.scope ?? 'single_seed_peer') as PreheatScope;
  if (!PREHEAT_SCOPES.includes(scope)) bad(`args.scope must be one of ${PREHEAT_SCOPES.join(', ')} (all_seed_peers is not supported: a Pollen cluster has one seed per supernode)`);
  const platform = args.platform === undefined || args.platform === '' ? DEFAULT_PLATFORM : String(args.platform);
  parsePlatform(platform);
  const headers: Record<string, string> = {};
  if (args.headers !== undefined && args.headers !== null) {
    if (typeof args.headers !== 'object' || Array.isArray(args.headers)) bad('args.headers must be an object of strings');
    const entries = Object.entries(args.headers);
    if (entries.length > MAX_HEADERS) bad(`args.headers holds more than ${MAX_HEADERS} headers`);
    for (const [k, v] of entries) {
      if (typeof v !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(k) || v.length > 8192) bad('args.headers must map header names to string values');
      headers[k.toLowerCase()] = v;
    }
  }
  let credentials: PreheatSecrets['credentials'];
  if (args.username || args.password) {
    if (typeof args.username !== 'string' || typeof args.password !== 'string' || !args.username) bad('args.username and args.password go together');
    credentials = { username: args.username, password: args.password };
  }
  const timeoutMs = optInt(args.timeout_ms, 'timeout_ms', 1_000, MAX_JOB_TIMEOUT_MS) ?? (typeof args.timeout === 'number' && args.timeout > 0 ? Math.min(MAX_JOB_TIMEOUT_MS, Math.max(1_000, Math.round(args.timeout / 1e6))) : DEFAULT_JOB_TIMEOUT_MS);
  const spec: PreheatSpec = {
    target: target(args),
    platform,
    scope,
    selection: {
      ids: strings(args.peers, 'peers'),
      ips: strings(args.ips, 'ips'),
      count: optInt(args.count, 'count', 1, 100_000),
      percentage: optInt(args.percentage, 'percentage', 1, 100),
    },
    concurrentTasks: optInt(args.concurrent_task_count, 'concurrent_task_count', 1, MAX_CONCURRENT_TASKS) ?? DEFAULT_CONCURRENT_TASKS,
    concurrentPeers: optInt(args.concurrent_peer_count, 'concurrent_peer_count', 1, MAX_CONCURRENT_PEERS) ?? DEFAULT_CONCURRENT_PEERS,
    timeoutMs,
  };
  const echo: Record<string, unknown> = {
    type: 'image',
    url: args.url ?? '',
    image: args.image ?? '',
    platform,
    scope,
    headers: Object.keys(headers).length > 0 ? Object.fromEntries(Object.keys(headers).map((k) => [k, '[redacted]'])) : null,
    username: credentials?.username ?? '',
    password: '',
    peers: spec.selection.ids ?? [],
    ips: spec.selection.ips ?? [],
    count: spec.selection.count ?? null,
    percentage: spec.selection.percentage ?? null,
    concurrent_task_count: spec.concurrentTasks,
    concurrent_peer_count: spec.concurrentPeers,
    timeout_ms: spec.timeoutMs,
  };
  return { spec, secrets: { headers, credentials }, echo };
}

export function hasSecrets(s: PreheatSecrets): boolean {
  return s.credentials !== undefined || Object.keys(s.headers).length > 0;
}
