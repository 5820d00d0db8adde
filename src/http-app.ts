// The fastify set-up both daemons share: their pino logger without per-request lines (those would
// drown a busy mirror), and listening on HOST:PORT with the URL it ended up on (port 0 allowed).
// A request's `log` is the app's logger itself: fastify's default gives every request a pino child
// bound to its request id, which binds nothing here (no per-request lines to correlate) and cost
// the supernode 2.6 % of its CPU answering syncs (the child's bindings pass the logger's redaction).
// `https` makes a TLS listener (the supernode's cluster API: TLS 1.3 PSK, see cluster-tls.ts).
import Fastify, { LogController, type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import type { Server } from 'node:http';
import type { TlsOptions } from 'node:tls';
import type { Logger } from 'pino';
import { splitHostPort } from './config.ts';

export type HttpAppOptions = Omit<FastifyHttpOptions<Server>, 'logger' | 'loggerInstance'> & { readonly https?: TlsOptions };

export function createHttpApp(logger: Logger, options: HttpAppOptions = {}): FastifyInstance {
  return Fastify({
    ...options,
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (parent: FastifyBaseLogger) => parent,
  } as FastifyHttpOptions<Server>) as unknown as FastifyInstance;
}

/** Listens on `HOST:PORT` and returns the base URL it serves on (`https:` for a TLS app). */
export async function listenOn(app: FastifyInstance, hostPort: string, scheme: 'http' | 'https' = 'http'): Promise<string> {
  const { host, port } = splitHostPort(hostPort);
  await app.listen({ host, port });
  const addr = app.server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
}
