// The supernode API's bytes on the simulated network. A call is two flows: the request from the
// peer's host to the supernode's (the seed's host, as on the bed) and the answer back, each the
// size of its JSON plus the HTTP and TLS around it. At a thousand peers the answers are most of a
// tenth of a second of the supernode's uplink every second, shared with the seed's pieces: free
// messages made the model's ramp the seed's alone.
import { hashesAfter } from '../../src/p2p/metainfo.ts';
import type { HostId, SimNetwork } from './network.ts';

/**
 * What an API call carries besides its JSON: the request line and headers (the peer's bearer
 * token, content type and length, host), the response's status line and headers, a TLS record's
 * header and tag each way, and the TCP/IP headers of the packets.
 */
export const API_REQUEST_OVERHEAD_BYTES = 320;
export const API_RESPONSE_OVERHEAD_BYTES = 220;
/** An OCI error body answered instead of a schedule. */
export const API_ERROR_BYTES = 160;
/** `"digest":"sha256:<64 hex>",` naming a task in a sync batch's item and its answer. */
export const DIGEST_JSON_BYTES = 81;

export interface ApiEnds {
  readonly network: SimNetwork;
  readonly peer: HostId;
  readonly supernode: HostId;
  /**
   * Calls that share one request's headers: a peer's transfers that sync on the same tick send
   * one batch (peer/p2p/supernode-client.ts), so each of an image's blobs pays its share.
   */
  readonly sharing: number;
  /** Every call's bytes that arrived, added up: requests to the supernode, answers from it. */
  readonly bytes: ApiBytes;
}

export interface ApiBytes {
  requests: number;
  answers: number;
}

/** The request's flow, then `answer` on the supernode, then the answer's flow; settles when the answer has arrived. */
export function apiCall<T>(ends: ApiEnds, requestJsonBytes: number, answer: () => T, answerJsonBytes: (a: T) => number): Promise<T> {
  const { network, peer, supernode, sharing, bytes } = ends;
  // Counted once arrived, as the links count what they carried (a run ends with answers in flight).
  const send = (from: HostId, to: HostId, n: number, then: () => void): void => {
    network.transfer(from, to, n, () => {
      if (from === peer) bytes.requests += n;
      else bytes.answers += n;
      then();
    });
  };
  return new Promise((resolve, reject) => {
    send(peer, supernode, API_REQUEST_OVERHEAD_BYTES / sharing + requestJsonBytes, () => {
      let a: T;
      try {
        a = answer();
      } catch (err) {
        send(supernode, peer, API_RESPONSE_OVERHEAD_BYTES / sharing + API_ERROR_BYTES, () => reject(err));
        return;
      }
      send(supernode, peer, API_RESPONSE_OVERHEAD_BYTES / sharing + answerJsonBytes(a), () => resolve(a));
    });
  });
}

/**
 * Bytes of the hashes an answer carries from `from` on as JSON (the route's hashesAfter: a sync's
 * trimmed as the peer's client asks, a creation's metainfo whole): 64 hex digits quoted, or null
 * where the seed has none yet.
 */
export function hashesJsonBytes(hashes: ReadonlyArray<string | null>, from: number, trim: boolean): number {
  let n = 0;
  for (const h of hashesAfter(hashes, from, trim)) n += h === null ? 5 : 67;
  return n;
}

export function jsonBytes(v: unknown): number {
  return JSON.stringify(v).length;
}
