// The peer's membership in the P2P cluster: its identity, the wire listener (uploader), what it can
// serve (LocalPieces), and registration with every configured supernode, kept alive by heartbeats;
// a supernode that forgot the peer (restart, missed heartbeats) gets a fresh registration with the
// peer's holdings, from which it rebuilds piece availability.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../../src/clock.ts';
import type { Kv } from '../../src/db.ts';
import type { ContentStore } from '../../src/content-store.ts';
import { splitHostPort } from '../../src/config.ts';
import type { Digest } from '../../src/digest.ts';
import { PollenError, toPollenError } from '../../src/errors.ts';
import { HEARTBEATS_PER_SYNC_WAIT, type HeartbeatBody } from '../../src/p2p/supernode-api.ts';
import { AddressBans, ExpiringBans } from '../../src/p2p/wire-bans.ts';
import { WireDialer } from '../../src/p2p/wire-dialer.ts';
import type { Throttle } from '../../src/rate/throttle.ts';
import { LocalPieces, type SavedProofs } from './local-pieces.ts';
import type { TransferEvent } from './transfer-seams.ts';
import { refusedMs } from './supernode-answers.ts';
import { SupernodeClient } from './supernode-client.ts';
import { REPORT_EVERY_MS } from './sync-batch.ts';
import { Uploader } from './uploader.ts';

export interface P2pAgentOptions {
  readonly supernodes: readonly string[];
  readonly secret: string;
  /** HOST:PORT of the wire listener. */
  readonly wireListen: string;
  /** HOST:PORT other peers dial (defaults to the listen host and the bound port). */
  readonly wireAdvertise: string | undefined;
  readonly uploadSlots: number;
  readonly uploadBytesPerSecond: number;
  readonly maxConnections: number;
  readonly supernodeTimeoutMs: number;
  /** TEST ONLY: corrupt every uploaded block. */
  readonly faultCorruptUploads?: boolean;
}

export interface P2pTotals {
  peer: number;
  seed: number;
  upstream: number;
}

const RETRY_MS = 1_000;
/** Heartbeat period when the supernode names none, and the bounds of one it names. */
const DEFAULT_HEARTBEAT_MS = 5_000;
const MIN_HEARTBEAT_MS = 500;
const MAX_HEARTBEAT_MS = 60_000;
/** While the peer moves bytes its reports (the status page's rates) go out this often, as a batch of syncs carries them. */
const BUSY_HEARTBEAT_MS = REPORT_EVERY_MS;

/**
 * A busy peer's heartbeat period: every BUSY_HEARTBEAT_MS, or as seldom as the supernode's last
 * answer asked (its pacing of a large swarm), never more seldom than the idle period.
 */
export function busyHeartbeatMs(idleMs: number, asked: unknown): number {
  const paced = typeof asked === 'number' && Number.isFinite(asked) ? asked : 0;
  return Math.min(idleMs, Math.max(BUSY_HEARTBEAT_MS, paced));
}

/**
 * How often a batch of syncs carries the report: as a busy heartbeat would go, and no more often
 * than every HEARTBEATS_PER_SYNC_WAIT of the waits the last answers asked (`syncWaitMs`: a peer
 * that syncs never heart-beats, so it learns the pacing from its syncs, not from a heartbeat's
 * `busyHeartbeatMs`); within half the idle period, which a report spares the heartbeat for. At
 * 10,000 simulated peers a report with every batch (~140 bytes a second a peer) was a tenth of
 * the supernode host's downlink, which the seed's stream from the registry needs.
 */
export function reportEveryMs(idleMs: number, asked: unknown, syncWaitMs: number): number {
  return Math.min(Math.max(busyHeartbeatMs(idleMs, asked), HEARTBEATS_PER_SYNC_WAIT * syncWaitMs), idleMs / 2);
}

/**
 * How long a heartbeat due now may wait: a batch of syncs that carried the peer's report
 * (`lastReportAt`, 0 for none) stands for a heartbeat for one idle period (`idleMs`, what the
 * supernode asked at registration) after it. A downloading peer syncs far more often than that, so
 * it sends no heartbeat at all, and its reports reach the status page with every sync; once its
 * syncs stop, the heartbeats resume within an idle period. 0 = send it now.
 */
export function sparedHeartbeatMs(now: number, lastReportAt: number, idleMs: number): number {
  return lastReportAt > 0 ? Math.max(0, lastReportAt + idleMs - now) : 0;
}

export class P2pAgent {
  /**
   * The id this peer registers with: random, and taken afresh when a supernode says another member
   * holds it (one that registered it first after a supernode restart, or while this peer's
   * heartbeats were lost), so no member can keep a peer out of the cluster by squatting its id.
   * The wire handshake's id stays the first one: nothing checks it against the supernode's.
   */
  get peerId(): string {
    return this.id;
  }
  private id = randomBytes(20).toString('hex');
  /** Dials parents for every transfer (TLS with the cluster's wire key when a secret is set). */
  readonly dialer: WireDialer;
  /** Addresses that broke the wire protocol, refused by the listener and not dialled (one list for both). */
  readonly wireBans: AddressBans;
  readonly client: SupernodeClient;
  readonly pieces: LocalPieces;
  readonly totals: P2pTotals = { peer: 0, seed: 0, upstream: 0 };
  /** Parents (by peer id) that sent a piece that failed verification: no transfer dials them for a while. */
  readonly parentBans: ExpiringBans;
  /** The host's download budget (`--download-rate`), paid by what parents and the seed send. */
  readonly downloads: Throttle | undefined;
  /** Called for every verified piece, by source and blob (metrics hook). */
  onBytes: (from: keyof P2pTotals, bytes: number, digest: string) => void = () => {};
  /** Called for wasted bytes, fallbacks, stalls and declined seed grants of every transfer (metrics hook). */
  onTransferEvent: (e: TransferEvent) => void = () => {};
  /** What each heartbeat reports to the supernode (its status page): version, store use, byte totals. */
  report: () => HeartbeatBody = () => ({});
  /** Called when a transfer bans a parent for a bad piece (metrics hook). */
  onBan: (peerId: string) => void = () => {};
  readonly logger: Logger;
  private readonly uploader: Uploader;
  private readonly options: P2pAgentOptions;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly registered = new Set<string>();
  /** The heartbeat period each supernode asked for at registration. */
  private readonly heartbeatMs = new Map<string, number>();
  /** The busy period each supernode's last heartbeat answer asked for (its pacing of a large swarm). */
  private readonly busyAsked = new Map<string, unknown>();
  private readonly clock: Clock;
  private closed = false;

  /**
   * `downloads`: the host's download budget, paying for what parents and the seed send; `proofs`:
   * where committed blobs' piece proofs outlive a restart (none: memory only).
   */
  constructor(deps: { store: ContentStore; logger: Logger; clock: Clock; downloads?: Throttle; proofs?: Kv<SavedProofs> }, options: P2pAgentOptions) {
    this.options = options;
    this.clock = deps.clock;
    this.logger = deps.logger.child({ component: 'p2p' });
    const peerId = Buffer.from(this.peerId, 'hex');
    this.wireBans = new AddressBans({ clock: deps.clock });
    this.parentBans = new ExpiringBans({ clock: deps.clock });
    this.dialer = new WireDialer({ bans: this.wireBans, throttle: deps.downloads }, { peerId, secret: options.secret });
    this.client = new SupernodeClient({ clock: deps.clock }, { urls: options.supernodes, secret: options.secret || undefined, timeoutMs: options.supernodeTimeoutMs });
    // A batch of syncs carries the report as often as a busy peer's heartbeat would go, and well
    // within the idle period a report spares the heartbeat for (sparedHeartbeatMs).
    this.client.reportWith(
      () => this.report(),
      (url, syncWaitMs) => reportEveryMs(this.heartbeatMs.get(url) ?? DEFAULT_HEARTBEAT_MS, this.busyAsked.get(url), syncWaitMs),
    );
    this.downloads = deps.downloads;
    this.pieces = new LocalPieces({ store: deps.store, ...(deps.proofs ? { proofs: deps.proofs } : {}) });
    this.uploader = new Uploader(
      { pieces: this.pieces, logger: deps.logger, clock: deps.clock, bans: this.wireBans },
      { listen: options.wireListen, peerId, secret: options.secret, uploadSlots: options.uploadSlots, uploadBytesPerSecond: options.uploadBytesPerSecond, maxConnections: options.maxConnections, corruptUploads: options.faultCorruptUploads ?? false },
    );
  }

  get wireAddr(): string {
    if (this.options.wireAdvertise) return this.options.wireAdvertise;
    const { host } = splitHostPort(this.options.wireListen);
    const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    return `${h.includes(':') ? `[${h}]` : h}:${this.uploader.listenPort}`;
  }

  get connectedChildren(): number {
    return this.uploader.connectedChildren;
  }

  /** Children connected for `digest`. */
  childrenOf(digest: Digest): number {
    return this.uploader.childrenOf(digest);
  }

  get uploadedBytes(): number {
    return this.uploader.uploadedBytes;
  }

  async start(): Promise<void> {
    await this.pieces.start();
    await this.uploader.start();
    for (const url of this.client.urls) void this.keepAlive(url);
    this.logger.info({ peerId: this.peerId, wire: this.wireAddr, supernodes: this.client.urls }, 'joined the P2P cluster');
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.uploader.close();
    await this.client.close();
  }

  /**
   * The content store evicted `digest`: stop offering it to other peers, and tell every supernode
   * this peer is registered with, so it stops naming this peer as a parent of the blob. A supernode
   * that cannot be told learns it from the next registration (holdings are rebuilt from the store).
   */
  forget(digest: Digest): void {
    if (!this.pieces.forget(digest)) return;
    for (const url of this.registered) {
      void this.client.dropHolding(url, digest).catch((err: unknown) => this.logger.debug({ supernode: url, digest, err: (err as Error).message }, 'could not report an evicted blob'));
    }
  }

  /** Resolves after `ms` on the agent's clock (a wait a supernode's refusal asked for). */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.setTimeout(resolve, ms));
  }

  isRegistered(url: string): boolean {
    return this.registered.has(url);
  }

  async register(url: string): Promise<void> {
    const body = () => ({ peerId: this.id, wireAddr: this.wireAddr, uploadSlots: this.options.uploadSlots, holdings: this.pieces.holdings() });
    const res = await this.client.register(url, body()).catch((err: unknown) => {
      if (!(err instanceof PollenError) || err.code !== 'ERR_PEER_ID_TAKEN') throw err;
      // The other supernodes learn the new id at their next heartbeat (the session no longer matches).
      const taken = this.id;
      this.id = randomBytes(20).toString('hex');
      this.logger.warn({ supernode: url, taken, peerId: this.id }, 'another member holds this peer id at the supernode: registering with a new one');
      return this.client.register(url, body());
    });
    if (!this.registered.has(url)) this.logger.info({ supernode: url }, 'registered with the supernode');
    this.registered.add(url);
    // The supernode says how often it wants a heartbeat (within sane bounds).
    const asked = Number(res.heartbeatMs);
    this.heartbeatMs.set(url, Number.isFinite(asked) ? Math.min(Math.max(asked, MIN_HEARTBEAT_MS), MAX_HEARTBEAT_MS) : DEFAULT_HEARTBEAT_MS);
  }

  /**
   * Busy (downloading, or children connected): every second, so the status page's rates are live,
   * or as seldom as a supernode pacing a large swarm asks; idle, as the supernode asked.
   */
  private heartbeatPeriod(url: string): number {
    const asked = this.heartbeatMs.get(url) ?? DEFAULT_HEARTBEAT_MS;
    return this.pieces.activeTransfers > 0 || this.uploader.connectedChildren > 0 ? busyHeartbeatMs(asked, this.busyAsked.get(url)) : asked;
  }

  private async keepAlive(url: string): Promise<void> {
    if (this.closed) return;
    let next = RETRY_MS;
    try {
      // The transfers' syncs carried the report lately: that was the heartbeat.
      const spared = this.registered.has(url) ? sparedHeartbeatMs(this.clock.now(), this.client.lastReportAt(url), this.heartbeatMs.get(url) ?? DEFAULT_HEARTBEAT_MS) : 0;
      if (spared > 0) next = spared;
      else {
        const answer = this.registered.has(url) ? await this.client.heartbeat(url, this.peerId, this.report()) : undefined;
        if (!answer) {
          this.registered.delete(url);
          await this.register(url);
        }
        this.busyAsked.set(url, answer?.busyHeartbeatMs);
        next = this.heartbeatPeriod(url);
      }
    } catch (err) {
      const e = toPollenError(err);
      // Refused for the peer's allowance: the supernode knows this peer and answers; registering
      // again would only cost more calls (and end the transfers' channel). Wait what it said.
      if (e.code === 'ERR_TOO_MANY_REQUESTS') next = Math.max(RETRY_MS, refusedMs(e));
      else if (this.registered.delete(url)) this.logger.warn({ supernode: url, err: e.message }, 'supernode unreachable');
    }
    if (this.closed) return;
    const t = setTimeout(() => void this.keepAlive(url), next);
    t.unref();
    this.timers.set(url, t);
  }
}
