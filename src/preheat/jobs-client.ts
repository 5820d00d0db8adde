// A typed HTTP client of the supernode's jobs API (the CLI's `pollen preheat`, tests, benchmarks),
// on the supernode's admin listener (--admin-listen, http://127.0.0.1:8003 by default).
import { request } from 'undici';
import { PollenError } from '../errors.ts';
import { apiErrorOf } from '../p2p/supernode-api.ts';
import { JOBS_API, type CreateJobBody, type JobBody } from './jobs-api.ts';

const MAX_RESPONSE_BYTES = 16 << 20;

export class JobsClient {
  private readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: { baseUrl: string; token?: string; timeoutMs?: number }) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  create(body: CreateJobBody): Promise<JobBody> {
    return this.call('POST', JOBS_API.jobs, body);
  }

  get(id: number): Promise<JobBody> {
    return this.call('GET', JOBS_API.job(id));
  }

  list(): Promise<JobBody[]> {
    return this.call('GET', JOBS_API.jobs);
  }

  /** Cancels a running job (its final state comes back); a finished job is forgotten (undefined). */
  async cancel(id: number): Promise<JobBody | undefined> {
    return this.call('DELETE', JOBS_API.job(id));
  }

  private async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res;
    try {
      res = await request(`${this.baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${this.baseUrl} unreachable: ${(err as Error).message}`, { supernode: this.baseUrl }, { cause: err });
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > MAX_RESPONSE_BYTES) {
        res.body.destroy();
        throw new PollenError('ERR_MESSAGE_TOO_LARGE', `supernode response exceeds ${MAX_RESPONSE_BYTES} bytes`);
      }
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (res.statusCode === 204) return undefined as T;
    if (res.statusCode >= 400) throw apiErrorOf(res.statusCode, text, 'ERR_SUPERNODE_UNAVAILABLE', { supernode: this.baseUrl });
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new PollenError('ERR_SUPERNODE_UNAVAILABLE', `supernode ${this.baseUrl} sent malformed JSON (${res.statusCode})`);
    }
    return parsed as T;
  }
}
