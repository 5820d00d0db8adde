// The supernode daemon: its HTTP API (fastify), metadata in level. The scheduler, tracker, seed
// and preheat jobs hang off this composition (see the P2P and preheat issues).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { openLevelKv, type Kv } from '../src/db.ts';
import { createHttpApp, listenOn } from '../src/http-app.ts';
import type { SupernodeConfig } from './config.ts';

export class Supernode {
  private readonly logger: Logger;
  private readonly config: SupernodeConfig;
  private app: FastifyInstance | undefined;
  private db: Kv | undefined;
  private address: string | undefined;

  constructor(deps: { logger: Logger }, config: SupernodeConfig) {
    this.logger = deps.logger.child({ component: 'supernode' });
    this.config = config;
  }

  /** The URL the API listens on (after start). */
  get url(): string {
    if (!this.address) throw new Error('supernode not started');
    return this.address;
  }

  async start(): Promise<void> {
    await mkdir(this.config.data, { recursive: true });
    this.db = await openLevelKv(join(this.config.data, 'meta'));
    const app = createHttpApp(this.logger);
    app.get('/healthz', async () => ({ status: 'ok' }));
    this.app = app;
    this.address = await listenOn(app, this.config.listen);
    this.logger.info({ url: this.address }, 'supernode listening');
  }

  async close(): Promise<void> {
    const app = this.app;
    this.app = undefined;
    await app?.close();
    const db = this.db;
    this.db = undefined;
    await db?.close();
  }
}
