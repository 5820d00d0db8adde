// Health on a daemon's loopback admin/metrics listener: `/healthz` says the process answers (the
// liveness probe), `/readyz` runs the daemon's readiness checks (stores writable, the metadata
// database answering, supernode and upstream reachable...) and answers 503 with every failing
// check's reason, so a load balancer or kubelet stops sending work and an operator reads why.
// Checks run at most once per READY_CACHE_MS however often the route is hit, each bounded by its
// own timeout.
import { randomBytes } from 'node:crypto';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { request, type Dispatcher } from 'undici';
import type { Kv } from './db.ts';

export const READY_CACHE_MS = 1_000;
export const CHECK_TIMEOUT_MS = 3_000;

/** A readiness check: resolves with undefined when fine, or the reason it is not. */
export interface ReadyCheck {
  readonly name: string;
  run(signal: AbortSignal): Promise<string | undefined>;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: Record<string, 'ok' | string>;
}

export class ReadinessProbe {
  private readonly checks: readonly ReadyCheck[];
  private last: { at: number; result: Promise<Readiness> } | undefined;

  constructor(checks: readonly ReadyCheck[]) {
    this.checks = checks;
  }

  check(): Promise<Readiness> {
    const now = Date.now();
    if (this.last && now - this.last.at < READY_CACHE_MS) return this.last.result;
    const result = this.runAll();
    this.last = { at: now, result };
    return result;
  }

  private async runAll(): Promise<Readiness> {
    const results = await Promise.all(
      this.checks.map(async (c): Promise<[string, string | undefined]> => {
        const signal = AbortSignal.timeout(CHECK_TIMEOUT_MS);
        try {
          return [c.name, await c.run(signal)];
        } catch (err) {
          return [c.name, signal.aborted ? `no answer within ${CHECK_TIMEOUT_MS} ms` : (err as Error).message];
        }
      }),
    );
    const checks: Record<string, string> = {};
    for (const [name, why] of results) checks[name] = why ?? 'ok';
    return { ready: results.every(([, why]) => why === undefined), checks };
  }
}

/** `/healthz` and `/readyz` on `app`; `config` is passed as route options (e.g. `{ auth: 'public' }`). */
export function registerHealthRoutes(app: FastifyInstance, probe: ReadinessProbe, config: Record<string, unknown> = {}): void {
  app.get('/healthz', { config }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config }, async (_req, reply) => {
    const r = await probe.check();
    return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not ready', checks: r.checks });
  });
}

/** The directory takes a new file: written, then removed. */
export function writableDirCheck(name: string, dir: string): ReadyCheck {
  return {
    name,
    async run() {
      const probe = join(dir, `.readyz-${randomBytes(6).toString('hex')}`);
      try {
        await writeFile(probe, 'ok', { mode: 0o600 });
      } catch (err) {
        return `cannot write ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      }
      await unlink(probe).catch(() => {});
      return undefined;
    },
  };
}

/** The metadata store (level) takes a write and reads it back: a closed or failing database is not ready. */
export function kvCheck(name: string, kv: Kv<string>): ReadyCheck {
  return {
    name,
    async run() {
      const key = `probe-${randomBytes(6).toString('hex')}`;
      try {
        await kv.put(key, 'ok');
        const back = await kv.get(key);
        await kv.del(key);
        return back === 'ok' ? undefined : 'the metadata store did not read back what was written';
      } catch (err) {
        return `the metadata store fails: ${(err as { code?: string }).code ?? (err as Error).message}`;
      }
    },
  };
}

/**
 * An HTTP endpoint answers at all (any status below 500: a registry's 401 at /v2/ is an answer).
 * The URL is given without credentials; only its origin goes into the reason.
 */
export function httpReachableCheck(name: string, url: string, dispatcher?: Dispatcher): ReadyCheck {
  return {
    name,
    async run(signal) {
      const origin = new URL(url).origin;
      try {
        const res = await request(url, { method: 'GET', signal, ...(dispatcher ? { dispatcher } : {}) });
        await res.body.dump();
        return res.statusCode < 500 ? undefined : `${origin} answered ${res.statusCode}`;
      } catch (err) {
        if (signal.aborted) throw err;
        return `${origin} unreachable: ${(err as { code?: string }).code ?? (err as Error).message}`;
      }
    },
  };
}
