// The supernode API's bytes on the simulated network. A request crosses to the supernode's host
// (the seed's, as on the bed) and waits its turn on that host's downlink, the answer waits its turn
// on its uplink and crosses back: each is its JSON's size plus the HTTP and TLS around it. A
// message is a packet or two, so the link serves them in arrival order (a queue), not as fluid
// flows sharing it: as flows, 10,000 answers of a burst all arrived when the last did, the seed's
// pieces got a 10,000th of the uplink meanwhile, and a 10,000-peer swarm fell back to the
// registry whole. The seed's pieces get what the answers leave of the uplink (apiUplinkShare), and
// its streams from the registry what the requests leave of the downlink (apiDownlinkShare).
import type { EventQueue } from './event-queue.ts';
import type { HeartbeatBody } from '../../src/p2p/supernode-api.ts';
import { FRAME_HEAD_BYTES } from '../../src/p2p/sync-channel-frames.ts';
import { ANSWER_OVERHEAD_BYTES, CHANNEL_ANSWER_OVERHEAD_BYTES, TCP_IP_BYTES, TLS_RECORD_BYTES } from '../../supernode/p2p/sync-pacer.ts';

/**
 * What an API call carries besides its JSON: the request line and headers (the peer's bearer
 * token, content type and length, host), the response's status line and headers, a TLS record's
 * header and tag each way, and the TCP/IP headers of the packets.
 */
export const API_REQUEST_OVERHEAD_BYTES = 320;
export const API_RESPONSE_OVERHEAD_BYTES = ANSWER_OVERHEAD_BYTES;

/** What a call carries besides its JSON, each way. */
export interface ApiOverhead {
  readonly request: number;
  readonly answer: number;
}

/** An HTTP request and its answer (task creations, registrations). */
export const HTTP_OVERHEAD: ApiOverhead = { request: API_REQUEST_OVERHEAD_BYTES, answer: API_RESPONSE_OVERHEAD_BYTES };
/**
 * A batch of syncs or a task's creation on the peer's sync channel (src/p2p/sync-channel-frames.ts): a frame's head,
 * its JSON wrapper (`{"i":123456,"b":...}`, `{"i":123456,"s":200,"b":...}`), a TLS record, the
 * packet's headers.
 */
export const CHANNEL_OVERHEAD: ApiOverhead = {
  request: FRAME_HEAD_BYTES + '{"i":123456,"b":}'.length + TLS_RECORD_BYTES + TCP_IP_BYTES,
  answer: CHANNEL_ANSWER_OVERHEAD_BYTES + '{"i":123456,"s":200,"b":}'.length,
};
/** An OCI error body answered instead of a schedule. */
export const API_ERROR_BYTES = 160;
/**
 * The heartbeat's report as a busy peer makes it at `now` (peer/peer.ts agent.report: a version,
 * the store's quota, and three byte counts that move while it pulls).
 */
export function simReport(now: number): HeartbeatBody {
  const moving = Math.floor(now);
  return { version: '0.1.0', storeBytes: 123_456_789_012 + moving, storeQuotaBytes: 216_453_839_257, uploadedBytes: 1_234_567_890 + moving, downloadedBytes: 1_234_567_890 + moving };
}

/** The bytes `report` adds to a batch of syncs or a creation (`"report":{...},`). */
export function reportJsonBytes(report: HeartbeatBody): number {
  return JSON.stringify({ report }).length - 1;
}

/** The supernode host's two links as the API's messages queue on them (ms when each is free next). */
export interface ApiLines {
  readonly upBytesPerS: number;
  readonly downBytesPerS: number;
  upFreeAt: number;
  downFreeAt: number;
  /** Answer bytes queued on the uplink since the seed's share was last set (apiUplinkShare). */
  upBytesSinceShare: number;
  /** Request bytes queued on the downlink since the streams' share was last set (apiDownlinkShare). */
  downBytesSinceShare: number;
}

/** How often the seed's pieces are given what the answers leave of the uplink, ms. */
export const API_SHARE_WINDOW_MS = 20;

/**
 * The answers go first on the supernode's uplink (a packet or two each, between the pieces'
 * packets); the seed's pieces get what they leave: over the last window, the uplink less the
 * answers' bytes, never under a twentieth of it. Call every API_SHARE_WINDOW_MS.
 */
export function apiUplinkShare(lines: ApiLines, setSeedUpCap: (bytesPerS: number) => void): void {
  const answersPerS = (lines.upBytesSinceShare * 1000) / API_SHARE_WINDOW_MS;
  lines.upBytesSinceShare = 0;
  setSeedUpCap(Math.max(lines.upBytesPerS / 20, lines.upBytesPerS - answersPerS));
}

/**
 * The requests go first on the supernode's downlink too; the seed's streams from the registry get
 * what they leave: over the last window, the downlink less the requests' bytes, never over the
 * registry's upload cap (`originBytesPerS`) and never under a twentieth of the downlink. Call
 * every API_SHARE_WINDOW_MS.
 */
export function apiDownlinkShare(lines: ApiLines, originBytesPerS: number, setStreamRate: (bytesPerS: number) => void): void {
  const requestsPerS = (lines.downBytesSinceShare * 1000) / API_SHARE_WINDOW_MS;
  lines.downBytesSinceShare = 0;
  setStreamRate(Math.min(originBytesPerS, Math.max(lines.downBytesPerS / 20, lines.downBytesPerS - requestsPerS)));
}

export interface ApiEnds {
  readonly queue: EventQueue;
  /** One-way latency between the peer and the supernode, ms. */
  readonly latencyMs: number;
  readonly lines: ApiLines;
  /**
   * Calls that share one request's headers: a peer's transfers that sync on the same tick send
   * one batch (peer/p2p/supernode-client.ts), so each of an image's blobs pays its share.
   */
  readonly sharing: number;
  /** Every call's bytes that arrived, added up: requests to the supernode, answers from it. */
  readonly bytes: ApiBytes;
  /** Told each answer's bytes, overhead included, as the route tells its pacing (SyncPacer.answered). */
  readonly answered?: (bytes: number) => void;
}

export interface ApiBytes {
  requests: number;
  answers: number;
}

/** The request's crossing and turn on the supernode's downlink, then `answer`, then the answer's turn on its uplink and crossing; settles when the answer has arrived. */
export function apiCall<T>(ends: ApiEnds, overhead: ApiOverhead, requestJsonBytes: number, answer: () => T, answerJsonBytes: (a: T) => number): Promise<T> {
  const { queue, latencyMs, lines, sharing, bytes } = ends;
  const requestBytes = overhead.request / sharing + requestJsonBytes;
  return new Promise((resolve, reject) => {
    const reply = (n: number, then: () => void): void => {
      lines.upBytesSinceShare += n;
      lines.upFreeAt = Math.max(queue.now, lines.upFreeAt) + (n / lines.upBytesPerS) * 1000;
      queue.at(lines.upFreeAt + latencyMs, () => {
        bytes.answers += n;
        then();
      });
    };
    queue.after(latencyMs, () => {
      lines.downBytesSinceShare += requestBytes;
      lines.downFreeAt = Math.max(queue.now, lines.downFreeAt) + (requestBytes / lines.downBytesPerS) * 1000;
      queue.at(lines.downFreeAt, () => {
        bytes.requests += requestBytes;
        let a: T;
        try {
          a = answer();
        } catch (err) {
          reply(overhead.answer / sharing + API_ERROR_BYTES, () => reject(err));
          return;
        }
        const n = overhead.answer / sharing + answerJsonBytes(a);
        ends.answered?.(n);
        reply(n, () => resolve(a));
      });
    });
  });
}

export function jsonBytes(v: unknown): number {
  return JSON.stringify(v).length;
}
