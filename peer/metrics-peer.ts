// The peer's Prometheus series, in one place so the names, labels and help lines agree with the
// dashboard (deploy/grafana/pollen.json) and docs/operations.md. Bytes carry Dragonfly's traffic
// types as `source`: back_to_source (the registry), remote_peer, seed, local_cache. State the peer
// keeps anyway (store use, transfers, connections) is read at scrape time.
import type { Counter, Histogram } from '../src/metrics.ts';
import { Metrics } from '../src/metrics.ts';

export type ByteSource = 'back_to_source' | 'remote_peer' | 'seed' | 'local_cache';
export type BlobOutcome = 'hit' | 'miss' | 'join';

/** What the gauges read at scrape time (each may be missing: no P2P without a supernode). */
export interface PeerGaugeSources {
  storeBytes(): number;
  quotaBytes(): number | undefined;
  storeBlobs(): number;
  activeTransfers(): number;
  connectedParents?(): number;
  connectedChildren?(): number;
  /** Bytes uploaded to other peers over the wire so far (the uploader's running total). */
  uploadedBytes?(): number;
  supernodesRegistered?(): number;
  bannedPeers?(): number;
}

export class PeerMetrics {
  readonly metrics = new Metrics({ prefix: 'pollen_peer_', defaults: true });
  /** Blob requests by outcome (hit, miss, join). */
  readonly blobRequests: Counter<'outcome'>;
  /** Bytes by direction and source. */
  readonly bytes: Counter<'direction' | 'source'>;
  readonly mirrorLatency: Histogram<'kind' | 'outcome'>;
  readonly bans: Counter;
  readonly pieceFailures: Counter<'cause'>;
  readonly evictions: Counter<'reason'>;
  readonly evictedBytes: Counter<'reason'>;

  constructor(gauges: () => PeerGaugeSources | undefined) {
    const m = this.metrics;
    this.blobRequests = m.counter('pollen_peer_blob_requests_total', 'blob requests by outcome: hit (store), miss (download started), join (joined a download in flight)', ['outcome']);
    this.bytes = m.counter(
      'pollen_peer_bytes_total',
      'blob bytes by direction and source: download from back_to_source (the registry), remote_peer or seed; upload to remote_peer (the wire) or from local_cache (served to this host\'s clients from the store)',
      ['direction', 'source'],
      () => this.syncUpload(gauges()?.uploadedBytes?.() ?? 0),
    );
    this.mirrorLatency = m.histogram('pollen_peer_mirror_request_duration_seconds', 'mirror requests from first byte in to last byte out, by kind (manifest, blob, other) and blob outcome (hit, miss, join; none for the rest)', ['kind', 'outcome']);
    this.bans = m.counter('pollen_peer_bans_total', 'parents banned for sending a piece that failed its sha256');
    this.pieceFailures = m.counter('pollen_peer_piece_failures_total', 'pieces that failed, by cause (digest_mismatch: a parent sent bytes that failed the piece sha256)', ['cause']);
    this.evictions = m.counter('pollen_peer_evictions_total', 'blobs removed from the content store, by reason (quota, ttl, deleted)', ['reason']);
    this.evictedBytes = m.counter('pollen_peer_evicted_bytes_total', 'bytes of the blobs removed from the content store, by reason', ['reason']);
    for (const reason of ['quota', 'ttl', 'deleted']) {
      this.evictions.inc({ reason }, 0);
      this.evictedBytes.inc({ reason }, 0);
    }
    this.pieceFailures.inc({ cause: 'digest_mismatch' }, 0);
    for (const source of ['back_to_source', 'remote_peer', 'seed']) this.bytes.inc({ direction: 'download', source }, 0);
    this.bytes.inc({ direction: 'upload', source: 'local_cache' }, 0);

    const read = (f: (g: PeerGaugeSources) => number | undefined): (() => number | undefined) => () => {
      const g = gauges();
      return g ? f(g) : undefined;
    };
    const gauge = (name: string, help: string, value: () => number | undefined): void => {
      m.gauge(name, help, [], (g) => {
        const v = value();
        if (v !== undefined) g.set(v);
      });
    };
    gauge('pollen_peer_store_bytes', 'bytes the content store holds (blobs and downloads in progress)', read((g) => g.storeBytes()));
    gauge('pollen_peer_store_quota_bytes', 'the content store quota in bytes (--disk-quota; absent without one)', read((g) => g.quotaBytes()));
    gauge('pollen_peer_store_blobs', 'blobs in the content store', read((g) => g.storeBlobs()));
    gauge('pollen_peer_active_transfers', 'blob downloads in progress (P2P or from the registry)', read((g) => g.activeTransfers()));
    gauge('pollen_peer_connected_parents', 'peers this peer downloads from, across its transfers', read((g) => g.connectedParents?.() ?? 0));
    gauge('pollen_peer_connected_children', 'peers connected to this peer\'s wire listener to download from it', read((g) => g.connectedChildren?.() ?? 0));
    gauge('pollen_peer_supernodes_registered', 'supernodes this peer is registered with', read((g) => g.supernodesRegistered?.() ?? 0));
    gauge('pollen_peer_banned_peers', 'peers this peer refuses to download from for now (they sent a piece that failed its sha256)', read((g) => g.bannedPeers?.() ?? 0));
  }

  private uploadedSeen = 0;

  /** Keeps bytes_total{upload, remote_peer} in step with the uploader's running total. */
  private syncUpload(total: number): void {
    if (total > this.uploadedSeen) this.bytes.inc({ direction: 'upload', source: 'remote_peer' }, total - this.uploadedSeen);
    this.uploadedSeen = Math.max(total, this.uploadedSeen);
  }

  /** Bytes that arrived at this peer. */
  downloaded(source: Exclude<ByteSource, 'local_cache'>, bytes: number): void {
    this.bytes.inc({ direction: 'download', source }, bytes);
  }
}
