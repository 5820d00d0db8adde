// Where the seed may fetch: a task names a registry by its host key, and the supernode maps it to a
// URL from its own configuration (--registry HOST=URL, --upstream URL); an unknown key is refused
// and no URL, header or host of the caller's ever reaches the seed's requests. The name must match
// the distribution grammar, and the only thing of the caller's the registry sees is a plain
// `Basic`/`Bearer` credential.
import { PollenError } from '../../src/errors.ts';
import { isValidName } from '../../src/oci/names.ts';
import type { RegistryHosts } from '../../src/oci/registry-hosts.ts';
import type { TaskUpstream } from '../../src/p2p/supernode-api.ts';

/** An Authorization value: a scheme the registry flow uses, one token68 credential, nothing else. */
const PLAIN_CREDENTIAL = /^(?:Basic|Bearer) [A-Za-z0-9._~+/-]+=*$/;
const MAX_CREDENTIAL_LENGTH = 8192;

/** A registry object the seed may fetch: a configured registry, a valid name, an optional credential. */
export interface SeedSource {
  /** The host key (what peers name the registry by). */
  readonly registry: string;
  /** From the supernode's configuration, never from a request. */
  readonly baseUrl: string;
  readonly name: string;
  readonly authorization: string | undefined;
}

export function isPlainCredential(v: string): boolean {
  return v.length <= MAX_CREDENTIAL_LENGTH && PLAIN_CREDENTIAL.test(v);
}

function bad(message: string): never {
  throw new PollenError('ERR_INVALID_REQUEST', message);
}

/** Checks the shape of a task body's `upstream` (it came over the network). */
export function parseTaskUpstream(raw: unknown): TaskUpstream {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('upstream must be an object {registry, name, authorization?}');
  const { registry, name, authorization } = raw as Record<string, unknown>;
  if (typeof registry !== 'string' || registry.length === 0) bad('upstream.registry must be the registry host (HOST or HOST:PORT)');
  if (typeof name !== 'string' || name.length === 0) bad('upstream.name must be a repository name');
  if (authorization !== undefined && typeof authorization !== 'string') bad('upstream.authorization must be a string');
  return { registry, name, ...(authorization !== undefined ? { authorization } : {}) };
}

/** Resolves a task's upstream against the configured registries (see the file comment). */
export function resolveSeedSource(hosts: RegistryHosts, upstream: TaskUpstream): SeedSource {
  const baseUrl = hosts.baseUrlOf(upstream.registry, 'the supernode');
  if (!isValidName(upstream.name)) {
    throw new PollenError('ERR_INVALID_NAME', `invalid repository name ${JSON.stringify(upstream.name.slice(0, 100))}`, { name: upstream.name.slice(0, 100) });
  }
  const authorization = upstream.authorization === '' ? undefined : upstream.authorization;
  if (authorization !== undefined && !isPlainCredential(authorization)) {
    throw new PollenError('ERR_INVALID_REQUEST', 'upstream.authorization must be one "Basic <credentials>" or "Bearer <token>" value');
  }
  return { registry: upstream.registry, baseUrl, name: upstream.name, authorization };
}
