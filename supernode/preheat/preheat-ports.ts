// The production PreheatPorts: resolution through RegistryClient with the job's credentials, the
// supernode's own Seed as the seed peer, and the tracker's live peers.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import { RegistryClient } from '../../src/oci/registry-client.ts';
import type { PreheatPorts, Upstream } from './job-manager.ts';
import type { PreheatSecrets, PreheatSpec } from './preheat-args.ts';
import { parsePlatform, resolveImage, type Resolved } from './preheat-resolver.ts';
import type { Seed } from '../p2p/seed.ts';
import type { Tracker } from '../p2p/tracker.ts';

const SETTLE_POLL_MS = 50;

export function preheatPorts(deps: { seed: Seed; tracker: Tracker }): PreheatPorts {
  return {
    resolve(spec: PreheatSpec, secrets: PreheatSecrets, signal: AbortSignal): Promise<Resolved> {
      const client = new RegistryClient({}, { baseUrl: spec.target.baseUrl, credentials: secrets.credentials, headers: secrets.headers, userAgent: 'pollen-preheat' });
      return resolveImage(client, spec.target.name, spec.target.reference, parsePlatform(spec.platform), signal);
    },

    async seedFetch(digest: Digest, size: number, upstream: Upstream, signal: AbortSignal, started: () => void): Promise<void> {
      const task = await deps.seed.ensure({ peerId: 'preheat', digest, sizeHint: size, upstream });
      started();
      for (;;) {
        signal.throwIfAborted();
        const state = (deps.seed.get(digest) ?? task).state;
        if (state.name === 'complete') return;
        if (state.name === 'failed') throw state.error;
        if (state.partial.settled) await sleep(SETTLE_POLL_MS, undefined, { signal });
        else await Promise.race([state.partial.settledPromise(), aborted(signal)]);
      }
    },

    livePeers() {
      return deps.tracker.list().map((p) => ({ id: p.peerId, addr: p.wireAddr }));
    },
  };
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = (): void => reject(new PollenError('ERR_ABORTED', 'preheat seed wait aborted'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}
