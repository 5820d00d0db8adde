// The fastify set-up both daemons share: their pino logger without per-request lines (those would
// drown a busy mirror), and listening on HOST:PORT with the URL it ended up on (port 0 allowed).
import Fastify, { LogController, type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { splitHostPort } from './config.ts';

export function createHttpApp(logger: Logger, options: Omit<FastifyHttpOptions<Server>, 'logger' | 'loggerInstance'> = {}): FastifyInstance {
  return Fastify({
    ...options,
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance;
}

/** Listens on `HOST:PORT` and returns the base URL it serves on. */
export async function listenOn(app: FastifyInstance, hostPort: string): Promise<string> {
  const { host, port } = splitHostPort(hostPort);
  await app.listen({ host, port });
  const addr = app.server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  return `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
}
