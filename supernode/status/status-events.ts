// Server-sent events for the status page: one JSON snapshot a second to every open `GET /events`.
// One snapshot is built per tick whoever listens (none built with nobody listening). Memory stays
// bounded: a client whose socket still holds more than MAX_PENDING_BYTES unsent (it reads slower
// than the page changes) is dropped rather than buffered for, and at most MAX_CLIENTS are open.
import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

export const EVENT_INTERVAL_MS = 1_000;
export const MAX_CLIENTS = 32;
/** About four of the largest snapshots (status-model.ts bounds them to a few hundred KiB). */
export const MAX_PENDING_BYTES = 1024 * 1024;

export class StatusEvents {
  private readonly snapshot: () => unknown;
  private readonly intervalMs: number;
  private readonly clients = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  /** Clients dropped for reading too slowly (tests and logs). */
  dropped = 0;

  constructor(deps: { snapshot: () => unknown }, options: { intervalMs?: number } = {}) {
    this.snapshot = deps.snapshot;
    this.intervalMs = options.intervalMs ?? EVENT_INTERVAL_MS;
  }

  get size(): number {
    return this.clients.size;
  }

  /** Takes over the reply's socket and streams snapshots until the client leaves (503 when full). */
  open(reply: FastifyReply): FastifyReply {
    if (this.clients.size >= MAX_CLIENTS) {
      return reply.code(503).header('retry-after', '10').send({ errors: [{ code: 'UNAVAILABLE', message: `the status page has ${MAX_CLIENTS} live viewers already`, detail: null }] });
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-content-type-options': 'nosniff' });
    this.clients.add(res);
    res.once('close', () => this.remove(res));
    this.send(res, `retry: 2000\ndata: ${JSON.stringify(this.snapshot())}\n\n`);
    this.timer ??= setInterval(() => this.tick(), this.intervalMs);
    return reply;
  }

  /** Ends every stream (the admin app closes). */
  close(): void {
    for (const res of this.clients) res.destroy();
    this.clients.clear();
    this.stop();
  }

  private tick(): void {
    if (this.clients.size === 0) return this.stop();
    const frame = `data: ${JSON.stringify(this.snapshot())}\n\n`;
    for (const res of this.clients) this.send(res, frame);
  }

  private send(res: ServerResponse, frame: string): void {
    if (res.writableLength > MAX_PENDING_BYTES) {
      this.dropped++;
      res.destroy();
      this.remove(res);
      return;
    }
    res.write(frame);
  }

  private remove(res: ServerResponse): void {
    this.clients.delete(res);
    if (this.clients.size === 0) this.stop();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
