// The peer's typed HTTP client of the supernode API (src/p2p/supernode-api.ts). With several
// supernodes, each digest has an owner by rendezvous hashing over the list; the next ones in that
// order take over when the owner is down. Every call has a timeout; failures are
// ERR_SUPERNODE_UNAVAILABLE (or the supernode's own error for 4xx answers).
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import type { Digest } from '../../src/digest.ts';
import { ERROR_CODES, PollenError, type ErrorCode } from '../../src/errors.ts';
import { clusterToken } from '../../src/p2p/wire-auth.ts';
import {
  API,
  CLUSTER_TOKEN_HEADER,
  type MetainfoBody,
  type RegisterRequest,
  type RegisterResponse,
  type SyncRequest,
  type SyncResponse,
  type TaskRequest,
} from '../../src/p2p/supernode-api.ts';
import { JOBS_API, type WorkRequest, type WorkResponse } from '../../src/preheat/jobs-api.ts';

const MAX_RESPONSE_BYTES = 1 << 20;
const SEED_PIECE_TIMEOUT_MS = 60_000;
const CREATE_TASK_TIMEOUT_MS = 20_000;

export class SupernodeClient {
  readonly urls: readonly string[];
  private readonly dispatcher: Dispatcher | undefined;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;

  constructor(deps: { dispatcher?: Dispatcher }, options: { urls: readonly string[]; secret?: string; timeoutMs: number }) {
    this.dispatcher = deps.dispatcher;
    this.urls = options.urls.map((u) => u.replace(/\/+$/, ''));
    this.timeoutMs = options.timeoutMs;
    this.headers = { 'content-type': 'application/json' };
    if (options.secret) this.headers[CLUSTER_TOKEN_HEADER] = clusterToken(options.secret);
  }

  /** Supernodes in preference order for `digest` (rendezvous hashing). */
  ownersOf(digest: Digest): string[] {
    const score = (u: string): string => createHash('sha256').update(u).update(digest).digest('hex');
    return [...this.urls].sort((a, b) => (score(a) < score(b) ? 1 : -1));
  }

  register(url: string, body: RegisterRequest): Promise<RegisterResponse> {
    return this.post(url, API.register, body);
  }

  /** False when the supernode no longer knows the peer (it must register again). */
  async heartbeat(url: string, peerId: string): Promise<boolean> {
    try {
      await this.post(url, API.heartbeat(peerId), {});
      return true;
    } catch (err) {
      if (err instanceof PollenError && err.kind === 'not_found') return false;
      throw err;
    }
  }

  /** Creating a task waits for the seed's first answer from the registry: allow it more time. */
  createTask(url: string, body: TaskRequest): Promise<MetainfoBody> {
    return this.post(url, API.task, body, Math.max(this.timeoutMs, CREATE_TASK_TIMEOUT_MS));
  }

  sync(url: string, digest: Digest, body: SyncRequest): Promise<SyncResponse> {
    return this.post(url, API.sync(digest), body);
  }

  /** Preheat work: delivers the peer's reports and gets its current assignments. */
  preheatWork(url: string, peerId: string, body: WorkRequest): Promise<WorkResponse> {
    return this.post(url, JOBS_API.peerWork(peerId), body);
  }

  async seedPiece(url: string, digest: Digest, index: number, peerId: string, signal: AbortSignal): Promise<Readable> {
    // The seed answers once the piece has come from the registry: wait longer than for API calls.
    const res = await this.send(url, API.seedPiece(digest, index, peerId), 'GET', undefined, signal, SEED_PIECE_TIMEOUT_MS);
    if (res.statusCode !== 200) throw await errorOf(url, res);
    return res.body;
  }

  private async post<T>(url: string, path: string, body: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    const res = await this.send(url, path, 'POST', JSON.stringify(body), AbortSignal.timeout(timeoutMs), timeoutMs);
    if (res.statusCode !== 200) throw await errorOf(url, res);
    const text = await readCapped(res.body);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${url} sent malformed JSON`, { supernode: url });
    }
  }

  private async send(url: string, path: string, method: 'GET' | 'POST', body: string | undefined, signal: AbortSignal, timeoutMs = this.timeoutMs): Promise<Dispatcher.ResponseData> {
    try {
      return await request(`${url}${path}`, {
        method,
        headers: this.headers,
        body,
        signal,
        dispatcher: this.dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (err) {
      throw new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${url} unreachable: ${(err as Error).message}`, { supernode: url }, { cause: err });
    }
  }
}

async function readCapped(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > MAX_RESPONSE_BYTES) {
      body.destroy();
      throw new PollenError('ERR_MESSAGE_TOO_LARGE', `supernode response exceeds ${MAX_RESPONSE_BYTES} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function errorOf(url: string, res: Dispatcher.ResponseData): Promise<PollenError> {
  let code: ErrorCode = 'ERR_SUPERNODE_UNAVAILABLE';
  let message = `supernode ${url} answered ${res.statusCode}`;
  try {
    const body = JSON.parse(await readCapped(res.body)) as { code?: string; message?: string };
    if (res.statusCode < 500 && body.code && body.code in ERROR_CODES) code = body.code as ErrorCode;
    if (body.message) message = `${message}: ${body.message}`;
  } catch {
    // keep the generic error
  }
  return new PollenError(code, message, { supernode: url, status: res.statusCode });
}
