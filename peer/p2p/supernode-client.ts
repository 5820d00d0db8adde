// The peer's typed HTTP client of the supernode API (src/p2p/supernode-api.ts). With several
// supernodes, each digest has an owner by rendezvous hashing over the list; the next ones in that
// order take over when the owner is down. Every call has a timeout; failures are
// ERR_SUPERNODE_UNAVAILABLE (or the supernode's own error for 4xx answers).
// With a cluster secret every call is TLS 1.3 keyed by it (src/cluster-tls.ts), also to a
// supernode given as `http://`: the secret says the cluster is encrypted. Registration returns this
// peer's own token per supernode, presented on every later call; when a supernode no longer knows
// the token (it restarted, or dropped the peer) the call fails as ERR_NOT_FOUND so the caller
// registers again, as it does for an unknown task. Batches of syncs, the calls a busy peer makes
// most, and task creations go on a sync channel to each supernode (sync-channel.ts: frames on one
// kept connection; npm run bench:sync, the supernode's CPU for a batch of 4 task syncs 0.5-0.8 x an
// HTTP request's, this client's about half), and seed pieces on a seed channel (seed-channel.ts),
// over HTTP where a supernode has none. What an answer means beyond its JSON (packed hashes, a seed piece's
// hash and proof, the piece key, a refused connection, a body read to its cap): supernode-answers.ts.
import { createHash } from 'node:crypto';
import { Agent, request, type Dispatcher } from 'undici';
import { steadyClock, type Clock } from '../../src/clock.ts';
import { pskClientOptions } from '../../src/cluster-tls.ts';
import type { Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import { API, API_LIMITS, apiErrorFrom, apiErrorOf, type HeartbeatBody, type HeartbeatResponse, type RegisterRequest, type RegisterResponse, type SyncBatchItem, type SyncBatchResponse, type SyncRequest, type SyncResponse, type TaskAnswer, type TaskBody } from '../../src/p2p/supernode-api.ts';
import type { ProofVerifier } from '../../src/p2p/piece-proof.ts';
import { type AnswerOptions, syncItem } from '../../src/p2p/sync-answer.ts';
import { namesOf, notRegistered, readCapped, seedPieceAnswer, taskAnswerOf, verifierOf, type SeedPieceAnswer } from './supernode-answers.ts';
import { ANSWER_OPTIONS, NamedByDigest, REPORT_EVERY_MS, ReportTurn, settleBatch, takeBatch, TASK_ANSWER_OPTIONS, type SyncQueue } from './sync-batch.ts';
import { SeedChannels } from './seed-channel.ts';
import { SyncChannels } from './sync-channel.ts';
import { pacedMs } from './transfer-sync.ts';
import { JOBS_API, type WorkRequest, type WorkResponse } from '../../src/preheat/jobs-api.ts';

const SEED_PIECE_TIMEOUT_MS = 60_000;

/**
 * Seed pieces over HTTP (a supernode without a seed channel, seed-channel.ts) go to each supernode
 * over one connection of their own, one request at a time: a connection per piece in flight filled
 * the supernode host's uplink queue with flows that held back the ACKs of the seed's own stream
 * from the registry (bed, 256 MiB, N = 4: all-done 26.14 / 26.19 -> 25.52 / 25.67 s); undici 7
 * (7.30.2) crashes when a pipelined request behind the head is aborted. API calls keep their own.
 */
export const SEED_CONNECTIONS = 1;
/**
 * How long an idle connection to a supernode is kept: its answers say nothing of keep-alive
 * (supernode/http/apps.ts), and the supernode closes one idle for 72 s. Longer than the heartbeat's
 * period, so an idle peer's beats reuse one connection (one TLS handshake, not one a beat).
 */
export const API_KEEP_ALIVE_MS = 60_000;
const API_KEEP_ALIVE = { keepAliveTimeout: API_KEEP_ALIVE_MS, keepAliveMaxTimeout: API_KEEP_ALIVE_MS } as const;
const CREATE_TASK_TIMEOUT_MS = 20_000;

export class SupernodeClient {
  /** The supernodes as configured (their identity: keys of ownership and registration). */
  readonly urls: readonly string[];
  private readonly dispatcher: Dispatcher | undefined;
  private readonly ownDispatcher: Agent | undefined;
  /** Seed pieces: one connection per supernode (see SEED_CONNECTIONS). */
  private readonly seedDispatcher: Dispatcher;
  private readonly ownSeedDispatcher: Agent | undefined;
  private readonly tls: boolean;
  private readonly timeoutMs: number;
  /** This peer's registration with each supernode (by configured URL). */
  private readonly sessions = new Map<string, { peerId: string; token: string }>();
  /** Each supernode's piece key, as its registration answer gave it (none from one before piece proofs). */
  private readonly verifiers = new Map<string, ProofVerifier>();
  /** The sync fields and channel calls each supernode's registration named (RegisterResponse.syncFields, channelCalls). */
  private readonly syncFields = new Map<string, readonly string[]>();
  private readonly channelCalls = new Map<string, readonly string[]>();
  /** Tasks a supernode could not tell by their short name: their syncs there name them by digest. */
  private readonly byDigest = new NamedByDigest();
  private readonly registering = new Map<string, Promise<RegisterResponse>>();
  private readonly syncQueues = new Map<string, SyncQueue>();
  private readonly clock: Clock;
  /** What a heartbeat would report; a batch of syncs carries it when due (reportDue). */
  private reporter: (() => HeartbeatBody) | undefined;
  /** How often a report is due, per supernode, given the wait its last sync answer asked (the peer's busy heartbeat period there). */
  private reportEveryMs: (url: string, syncWaitMs: number) => number = () => REPORT_EVERY_MS;
  /** The wait the last sync answer from each supernode asked (`syncMs`; 0: none). */
  private readonly syncWaits = new Map<string, number>();
  /** The report to each supernode: when a request last counted as this peer's heartbeat there, and whether one carries it now. */
  private readonly reports = new Map<string, ReportTurn>();
  /**
   * How many of ANSWER_OPTIONS each supernode takes (all when absent): one from before an option
   * refuses it as a field it does not know, and its syncs go without it (and those after it) from then.
   */
  private readonly answerOptions = new Map<string, number>();

  /** Each supernode's sync channel (none with an injected dispatcher, or when turned off). */
  private readonly channels: SyncChannels | undefined;
  /** Each supernode's seed channel (likewise). */
  private readonly seedChannels: SeedChannels | undefined;
  /** Seed pieces asked on seed channels, and over HTTP (no channel, or none to be had). */
  private readonly seedVia = { channel: 0, http: 0 };
  /** Batches of syncs (`b`) and task creations (`t`) answered on sync channels, and sent as HTTP requests (no channel, or none to be had). */
  private readonly via = { b: { channel: 0, http: 0 }, t: { channel: 0, http: 0 } };

  constructor(deps: { dispatcher?: Dispatcher; clock?: Clock }, options: { urls: readonly string[]; secret?: string; timeoutMs: number; syncChannel?: boolean }) {
    this.urls = options.urls.map((u) => u.replace(/\/+$/, ''));
    this.timeoutMs = options.timeoutMs;
    this.clock = deps.clock ?? steadyClock;
    this.tls = Boolean(options.secret);
    const connect = options.secret ? { connect: pskClientOptions(options.secret, 'api') } : {};
    this.ownDispatcher = deps.dispatcher ? undefined : new Agent({ ...connect, ...API_KEEP_ALIVE });
    this.dispatcher = deps.dispatcher ?? this.ownDispatcher;
    this.seedDispatcher = deps.dispatcher ?? (this.ownSeedDispatcher = new Agent({ ...connect, ...API_KEEP_ALIVE, connections: SEED_CONNECTIONS }));
    this.channels = deps.dispatcher || options.syncChannel === false ? undefined : new SyncChannels({ secret: options.secret, now: () => this.clock.now() });
    this.seedChannels = deps.dispatcher || options.syncChannel === false ? undefined : new SeedChannels({ secret: options.secret, now: () => this.clock.now(), timeoutMs: SEED_PIECE_TIMEOUT_MS });
  }

  /** Supernodes in preference order for `digest` (rendezvous hashing). */
  ownersOf(digest: Digest): string[] {
    const score = (u: string): string => createHash('sha256').update(u).update(digest).digest('hex');
    return [...this.urls].sort((a, b) => (score(a) < score(b) ? 1 : -1));
  }

  /**
   * Registers (again: with this peer's token, so the supernode knows it is the same peer).
   * Registrations with one supernode run one after another: a second one started while the first
   * is under way must present the token the first one brings back.
   */
  register(url: string, body: RegisterRequest): Promise<RegisterResponse> {
    const previous = this.registering.get(url) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => this.registerNow(url, body));
    this.registering.set(url, next);
    void next.catch(() => {}).finally(() => {
      if (this.registering.get(url) === next) this.registering.delete(url);
    });
    return next;
  }

  private async registerNow(url: string, body: RegisterRequest): Promise<RegisterResponse> {
    const session = this.sessions.get(url);
    const sent = { ...body, holdings: body.holdings.slice(0, API_LIMITS.holdings) };
    const res = await this.post<RegisterResponse>(url, API.register, sent, this.timeoutMs, session?.peerId === body.peerId ? session.token : undefined);
    if (typeof res.token !== 'string' || res.peerId !== body.peerId) throw new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${url} sent a malformed registration answer`, { supernode: url });
    this.sessions.set(url, { peerId: res.peerId, token: res.token });
    const verifier = verifierOf(res.pieceKey);
    if (verifier) this.verifiers.set(url, verifier);
    else this.verifiers.delete(url);
    this.syncFields.set(url, namesOf(res.syncFields));
    this.channelCalls.set(url, namesOf(res.channelCalls));
    this.reports.get(url)?.forget();
    return res;
  }

  /** The supernode's answer, or undefined when it no longer knows this peer (`peerId`): it must register again. */
  async heartbeat(url: string, peerId: string, report: HeartbeatBody = {}): Promise<HeartbeatResponse | undefined> {
    if (this.sessions.get(url)?.peerId !== peerId) return undefined;
    try {
      return await this.post<HeartbeatResponse>(url, API.heartbeat, report);
    } catch (err) {
      if (err instanceof PollenError && err.kind === 'not_found') return undefined;
      throw err;
    }
  }

  /** Batches of syncs, and task creations with a first sync, carry `report()` as the peer's heartbeat report when due (reportDue), one request at a time (ReportTurn). */
  reportWith(report: () => HeartbeatBody, everyMs?: (url: string, syncWaitMs: number) => number): void {
    this.reporter = report;
    if (everyMs) this.reportEveryMs = everyMs;
  }

  /** The report, if due and no other request to `url` carries it (ReportTurn.next); the request that takes it settles it (ReportTurn.settle). */
  private reportIfDue(url: string): { full: HeartbeatBody; body: HeartbeatBody } | undefined {
    if (!this.reporter) return undefined;
    const turn = this.reports.get(url) ?? this.reports.set(url, new ReportTurn()).get(url)!;
    return turn.next(this.clock.now(), this.reportEveryMs(url, this.syncWaits.get(url) ?? 0), this.reporter, this.syncFields.get(url)?.includes('reportChanges') === true);
  }

  /**
   * When a batch of syncs to `url` last counted as this peer's heartbeat (0: never): a supernode
   * that took the report says so in its answer, so an older one, which ignores it, never spares a
   * heartbeat.
   */
  lastReportAt(url: string): number {
    return this.reports.get(url)?.lastAt ?? 0;
  }

  /**
   * Creating a task waits for the seed's first answer from the registry: allow it more time. A
   * supernode older than the first schedule refuses `first` as a field it does not know: asked
   * again without it, it gives the task as before (the transfer then syncs for its schedule), so a
   * cluster whose peers are upgraded first keeps pulling over P2P.
   */
  async createTask(url: string, body: TaskBody): Promise<TaskAnswer> {
    const timeoutMs = Math.max(this.timeoutMs, CREATE_TASK_TIMEOUT_MS);
    // A creation that asks for the first schedule carries the heartbeat's report too, as a sync batch does.
    const report = body.first !== undefined ? this.reportIfDue(url) : undefined;
    let taken = false;
    try {
      const answer = taskAnswerOf(url, await this.viaChannel<TaskAnswer>(url, 't', API.task, { ...body, ...(report ? { report: report.body } : {}), ...TASK_ANSWER_OPTIONS }, timeoutMs));
      taken = answer.reported === true;
      return answer;
    } catch (err) {
      if (body.first === undefined || !(err instanceof PollenError) || err.code !== 'ERR_INVALID_REQUEST') throw err;
      const { first: _, report: __, withoutHashes: ___, ...older } = body;
      return taskAnswerOf(url, await this.post<TaskAnswer>(url, API.task, older, timeoutMs));
    } finally {
      if (report) this.reports.get(url)?.settle(this.clock.now(), taken, report.full);
    }
  }

  /**
   * One task's sync. Syncs asked in the same turn of the event loop (the transfers tick together)
   * go to the supernode in one request, and so do those asked while a request is out: each answer
   * or error comes back to its own caller, as if it had been sent alone.
   */
  sync(url: string, digest: Digest, body: SyncRequest): Promise<SyncResponse> {
    return new Promise((resolve, reject) => {
      let queue = this.syncQueues.get(url);
      if (!queue) this.syncQueues.set(url, (queue = { waiting: [], scheduled: false, inFlight: false }));
      queue.waiting.push({ digest, body, resolve, reject });
      this.flushSoon(url, queue);
    });
  }

  private flushSoon(url: string, queue: SyncQueue): void {
    if (queue.scheduled || queue.inFlight || queue.waiting.length === 0) return;
    queue.scheduled = true;
    setImmediate(() => {
      queue.scheduled = false;
      void this.flushSyncs(url, queue);
    });
  }

  private async flushSyncs(url: string, queue: SyncQueue): Promise<void> {
    if (queue.inFlight) return;
    const batch = takeBatch(queue.waiting);
    if (batch.length === 0) return;
    queue.inFlight = true;
    const report = this.reportIfDue(url);
    let taken = false;
    try {
      let items: readonly SyncBatchItem[] = [];
      const send = (options: number): Promise<SyncBatchResponse> => {
        const asked: AnswerOptions = Object.fromEntries(ANSWER_OPTIONS.slice(0, options).map((o) => [o, true]));
        const fields = this.syncFields.get(url) ?? [];
        items = batch.map((q) => syncItem(q.body, q.digest, asked, fields, this.byDigest.has(url, q.digest)));
        return this.viaChannel<SyncBatchResponse>(url, 'b', API.syncs, { syncs: items, ...(report ? { report: report.body } : {}) }, this.timeoutMs);
      };
      // A supernode from before an option refuses the batch (ERR_INVALID_REQUEST): asked again
      // with one option less, down to none.
      const sent = async (options: number): Promise<SyncBatchResponse> => {
        try {
          return await send(options);
        } catch (err) {
          if (options === 0 || !(err instanceof PollenError) || err.code !== 'ERR_INVALID_REQUEST') throw err;
          this.answerOptions.set(url, options - 1);
          return sent(options - 1);
        }
      };
      let options = this.answerOptions.get(url) ?? ANSWER_OPTIONS.length;
      const res = await sent(options);
      options = this.answerOptions.get(url) ?? ANSWER_OPTIONS.length;
      // Terse answers (and those to items named by task, which ask terse) name no digest: they come in the order asked.
      const terse = options > ANSWER_OPTIONS.indexOf('terse');
      taken = res?.reported === true;
      settleBatch(url, batch, items, res, terse, {
        answered: (answer) => this.syncWaits.set(url, pacedMs(answer)),
        unnamed: (digest) => this.byDigest.add(url, digest),
      });
    } catch (err) {
      for (const q of batch) q.reject(err);
    } finally {
      if (report) this.reports.get(url)?.settle(this.clock.now(), taken, report.full);
      queue.inFlight = false;
      this.flushSoon(url, queue);
    }
  }

  /**
   * A call on the sync channel to `url` (sync-channel.ts), a batch of syncs (`b`) or a task's
   * creation (`t`: a 4-byte head, not HTTP's ~250 bytes each way), answered as POST `path` would be;
   * over HTTP where the supernode has no channel, or takes no creations there (channelCalls).
   */
  private async viaChannel<T>(url: string, kind: 'b' | 't', path: string, body: unknown, timeoutMs: number): Promise<T> {
    const token = this.tokenFor(url);
    const channel = kind === 'b' || this.channelCalls.get(url)?.includes('task');
    const answer = channel ? await this.channels?.call(url, token, JSON.stringify(body), timeoutMs, kind) : undefined;
    if (!answer) {
      this.via[kind].http++;
      return this.post<T>(url, path, body, timeoutMs, token);
    }
    this.via[kind].channel++;
    if (answer.status !== 200) throw this.answeredError(url, answer.status, apiErrorFrom(answer.status, answer.body, 'ERR_SUPERNODE_UNAVAILABLE', { supernode: url }));
    return answer.body as T;
  }

  /** This peer no longer holds `digest` (its store evicted it). */
  async dropHolding(url: string, digest: Digest): Promise<void> {
    await this.post(url, API.drop(digest), {});
  }

  /** Preheat work of this peer (`peerId`, registered with `url`): delivers its reports and gets its assignments. */
  preheatWork(url: string, peerId: string, body: WorkRequest): Promise<WorkResponse> {
    if (this.sessions.get(url)?.peerId !== peerId) return Promise.reject(notRegistered(url));
    return this.post(url, JOBS_API.peerWork, body);
  }

  async seedPiece(url: string, digest: Digest, index: number, signal: AbortSignal): Promise<SeedPieceAnswer> {
    // On the seed channel where the supernode has one (seed-channel.ts), else over HTTP.
    const token = this.tokenFor(url);
    const viaChannel = this.channelCalls.get(url)?.includes('seed') ? await this.seedChannels?.piece(url, token, digest, index, signal) : undefined;
    if (viaChannel) {
      this.seedVia.channel++;
      if ('answer' in viaChannel) return viaChannel.answer;
      throw this.answeredError(url, viaChannel.status, apiErrorFrom(viaChannel.status, viaChannel.body, 'ERR_SUPERNODE_UNAVAILABLE', { supernode: url }));
    }
    this.seedVia.http++;
    // The seed answers once the piece has come from the registry: wait longer than for API calls.
    const res = await this.send(url, API.seedPiece(digest, index), 'GET', undefined, signal, SEED_PIECE_TIMEOUT_MS, token, this.seedDispatcher);
    if (res.statusCode !== 200) throw await this.errorOf(url, res);
    return seedPieceAnswer(res.body, (name) => res.headers[name] ?? res.trailers?.[name]);
  }

  get syncBatches(): { channel: number; http: number } {
    return { ...this.via.b };
  }

  get taskCreations(): { channel: number; http: number } {
    return { ...this.via.t };
  }

  get seedPieces(): { channel: number; http: number } {
    return { ...this.seedVia };
  }

  /** Checks piece proofs against `url`'s piece key; undefined when it gave none (not registered, or from before proofs). */
  proofVerifier(url: string): ProofVerifier | undefined {
    return this.verifiers.get(url);
  }

  async close(): Promise<void> {
    this.channels?.close();
    this.seedChannels?.close();
    await Promise.all([this.ownDispatcher?.close(), this.ownSeedDispatcher?.close()]);
  }

  private tokenFor(url: string): string {
    const session = this.sessions.get(url);
    if (!session) throw notRegistered(url);
    return session.token;
  }

  private async post<T>(url: string, path: string, body: unknown, timeoutMs = this.timeoutMs, token: string | undefined = path === API.register ? undefined : this.tokenFor(url)): Promise<T> {
    // A deadline for the whole call, cleared once answered (AbortSignal.timeout's timer fires anyway,
    // building a DOMException per call long after the answer).
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new PollenError('ERR_SUPERNODE_UNAVAILABLE', `no answer within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    try {
      const res = await this.send(url, path, 'POST', JSON.stringify(body), deadline.signal, timeoutMs, token);
      if (res.statusCode !== 200) throw await this.errorOf(url, res);
      const text = await readCapped(res.body);
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${url} sent malformed JSON`, { supernode: url });
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private async send(url: string, path: string, method: 'GET' | 'POST', body: string | undefined, signal: AbortSignal, timeoutMs: number, token: string | undefined, dispatcher = this.dispatcher): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    try {
      return await request(`${this.tls ? url.replace(/^http:/, 'https:') : url}${path}`, {
        method,
        headers,
        body,
        signal,
        dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (err) {
      throw new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${url} unreachable: ${(err as Error).message}`, { supernode: url }, { cause: err });
    }
  }

  /** The supernode's error; one that no longer knows our token drops it and reads as not_found. */
  private async errorOf(url: string, res: Dispatcher.ResponseData): Promise<PollenError> {
    let text = '';
    try {
      text = await readCapped(res.body);
    } catch {
      // keep the generic error
    }
    return this.answeredError(url, res.statusCode, apiErrorOf(res.statusCode, text, 'ERR_SUPERNODE_UNAVAILABLE', { supernode: url }));
  }

  /** The error a supernode answered with `status` (over HTTP or a sync channel), as the caller sees it. */
  private answeredError(url: string, status: number, err: PollenError): PollenError {
    if (err.code === 'ERR_CLUSTER_UNAUTHORIZED') {
      this.sessions.delete(url);
      return new PollenError('ERR_NOT_FOUND', `supernode ${url} does not know this peer (any more): register again`, { supernode: url, status });
    }
    return new PollenError(err.code, `supernode ${url} answered ${status}: ${err.message}`, err.detail);
  }
}
