// A stand-in upstream for unit tests of the mirror's services: a loopback HTTP server whose answer
// to each request is decided by a table of (credential, path) → status, and which records what it
// was asked. Blob bodies come from a map of digest → bytes.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
}

export class FakeRegistry {
  readonly seen: SeenRequest[] = [];
  /** `${authorization ?? ''} ${path}` → status; absent keys answer 404. */
  readonly allow = new Set<string>();
  readonly blobs = new Map<string, Buffer>();
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      const authorization = header(req, 'authorization');
      this.seen.push({ method: req.method ?? '', path, authorization });
      if (!this.allow.has(`${authorization ?? ''} ${path}`)) {
        res.writeHead(authorization ? 404 : 401, authorization ? { 'content-type': 'application/json' } : { 'www-authenticate': 'Bearer realm="http://token.invalid/token",service="fake"' });
        res.end(authorization ? '{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}' : '');
        return;
      }
      const digest = path.split('/').pop() ?? '';
      const body = this.blobs.get(digest) ?? Buffer.alloc(0);
      res.writeHead(200, { 'content-length': String(body.length), 'docker-content-digest': digest });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  grant(authorization: string | undefined, path: string): void {
    this.allow.add(`${authorization ?? ''} ${path}`);
  }

  heads(path: string): number {
    return this.seen.filter((r) => r.method === 'HEAD' && r.path === path).length;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
