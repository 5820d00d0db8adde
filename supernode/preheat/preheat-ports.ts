// The production PreheatPorts: resolution through RegistryClient with the job's credentials, the
// supernode's own Seed as the seed peer, and the tracker's live peers. Both reach only a registry
// the supernode is configured for, at the URL configured for it (not the one the job named).
// The interfaces are the job manager's view of the rest of the supernode (in-memory fakes in unit tests).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import type { RegistryHosts } from '../../src/oci/registry-hosts.ts';
import { RegistryClient } from '../../src/oci/registry-client.ts';
import type { PreheatSecrets, PreheatSpec } from './preheat-args.ts';
import { parsePlatform, resolveImage, type Resolved } from './preheat-resolver.ts';
import type { Seed } from '../p2p/seed.ts';
import type { Tracker } from '../p2p/tracker.ts';

/** The registry object of a job's blob and the job's credential: for the seed only, never for peers. */
export interface JobUpstream {
  /** Host key of the supernode's configured registries. */
  readonly registry: string;
  readonly name: string;
  readonly authorization?: string;
}

/** What the manager needs from the rest of the supernode (in-memory fakes in unit tests). */
export interface PreheatPorts {
  /** Throws ERR_UNKNOWN_UPSTREAM unless the supernode is configured to reach this registry. */
  checkRegistry(registry: string): void;
  resolve(spec: PreheatSpec, secrets: PreheatSecrets, signal: AbortSignal): Promise<Resolved>;
  /**
   * Has the seed hold the whole blob, fetched with the job's credential once the registry admitted
   * it for this blob; calls `started` then (peers may join).
   */
  seedFetch(digest: Digest, size: number, upstream: JobUpstream, signal: AbortSignal, started: () => void): Promise<void>;
  /** Admits a peer for a blob on the job's authority (the registry admitted the job's credential for it). */
  admit(peerId: string, digest: Digest): void;
  livePeers(): ReadonlyArray<{ readonly id: string; readonly addr: string }>;
}

const SETTLE_POLL_MS = 50;

export function preheatPorts(deps: { seed: Seed; tracker: Tracker; hosts: RegistryHosts }): PreheatPorts {
  return {
    checkRegistry(registry: string): void {
      deps.hosts.baseUrlOf(registry, 'the supernode');
    },

    resolve(spec: PreheatSpec, secrets: PreheatSecrets, signal: AbortSignal): Promise<Resolved> {
      const baseUrl = deps.hosts.baseUrlOf(spec.target.registry, 'the supernode');
      const client = new RegistryClient({}, { baseUrl, credentials: secrets.credentials, headers: secrets.headers, userAgent: 'pollen-preheat' });
      return resolveImage(client, spec.target.name, spec.target.reference, parsePlatform(spec.platform), signal);
    },

    async seedFetch(digest: Digest, size: number, upstream: JobUpstream, signal: AbortSignal, started: () => void): Promise<void> {
      const task = await deps.seed.ensure(deps.seed.sourceOf(upstream), digest, size);
      started();
      for (;;) {
        signal.throwIfAborted();
        const state = (deps.seed.get(digest) ?? task).state;
        if (state.name === 'complete') return;
        if (state.name === 'failed') throw state.error;
        if (state.partial.settled) await sleep(SETTLE_POLL_MS, undefined, { signal });
        else await settledOrAborted(state.partial.settledPromise(), signal);
      }
    },

    admit(peerId: string, digest: Digest): void {
      deps.seed.admit(peerId, digest);
    },

    livePeers() {
      return deps.tracker.list().map((p) => ({ id: p.peerId, addr: p.wireAddr }));
    },
  };
}

/** Waits for `settled`, or rejects once `signal` aborts; the abort listener goes either way (one wait per partial of a task). */
async function settledOrAborted(settled: Promise<unknown>, signal: AbortSignal): Promise<void> {
  let fail!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    fail = () => reject(new PollenError('ERR_ABORTED', 'preheat seed wait aborted'));
  });
  if (signal.aborted) fail();
  else signal.addEventListener('abort', fail, { once: true });
  try {
    await Promise.race([settled, aborted]);
  } finally {
    signal.removeEventListener('abort', fail);
  }
}
