// A Docker token-auth server (the Bearer flow of the distribution spec) for a real registry: it
// signs RS256 JWTs with a throwaway self-signed certificate that the registry trusts. By default it
// grants every requested action to its users and nothing to anyone else; a `grant` policy decides
// per (user, repository) instead, as real registries do (see scoped-token-registry.ts).
import { createPrivateKey, createSign, randomUUID, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileP, freePort, requireTool } from './tools.ts';

export const TOKEN_ISSUER = 'pollen-test-issuer';
export const TOKEN_SERVICE = 'pollen-test-registry';

export interface TokenUser {
  readonly username: string;
  readonly password: string;
}

/** The actions `user` (undefined: anonymous) gets on `repository` out of those it asked for. */
export type GrantPolicy = (user: string | undefined, repository: string, requested: readonly string[]) => readonly string[];

const GRANT_USERS_EVERYTHING: GrantPolicy = (user, _repository, requested) => (user ? requested : []);

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

export class TokenServer {
  private constructor(
    readonly realm: string,
    readonly certPath: string,
    private readonly dir: string,
    private readonly server: Server,
    readonly issued: Array<{ user: string | undefined; scope: string | undefined; granted: boolean }>,
  ) {}

  /** One user (or several) and, optionally, the policy of who gets what. */
  static async start(users: TokenUser | readonly TokenUser[], options: { grant?: GrantPolicy } = {}): Promise<TokenServer> {
    const list: readonly TokenUser[] = Array.isArray(users) ? users : [users as TokenUser];
    const grant = options.grant ?? GRANT_USERS_EVERYTHING;
    const openssl = requireTool('openssl', 'openssl');
    const dir = await mkdtemp(join(tmpdir(), 'pollen-token-'));
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    await execFileP(openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=pollen-token']);
    const key = createPrivateKey(await readFile(keyPath));
    const certDer = new X509Certificate(await readFile(certPath)).raw;
    const issued: TokenServer['issued'] = [];
    const byBasic = new Map(list.map((u) => [`Basic ${Buffer.from(`${u.username}:${u.password}`).toString('base64')}`, u.username]));
    const server = createServer(async (req, res) => {
      // GET with query and Basic auth (docker, skopeo), or an OAuth2 POST form with
      // grant_type=password (containerd, when it has credentials).
      const url = new URL(req.url ?? '/', 'http://token');
      let params = url.searchParams;
      let authorization = req.headers.authorization;
      if (req.method === 'POST') {
        let body = '';
        for await (const c of req) body += String(c);
        params = new URLSearchParams(body);
        if (params.get('grant_type') === 'password') authorization = `Basic ${Buffer.from(`${params.get('username')}:${params.get('password')}`).toString('base64')}`;
      }
      const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s.length > 0);
      const scope = scopes.length > 0 ? scopes.join(' ') : undefined;
      const user = authorization ? byBasic.get(authorization) : undefined;
      if (authorization && !user) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        issued.push({ user: 'invalid', scope, granted: false });
        return;
      }
      const access = [];
      for (const one of scopes) {
        const m = /^repository:([^:]+):(.+)$/.exec(one);
        if (!m) continue;
        const actions = grant(user, m[1]!, m[2]!.split(','));
        if (actions.length > 0) access.push({ type: 'repository', name: m[1], actions });
      }
      issued.push({ user, scope, granted: access.length > 0 });
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] }));
      const claims = b64url(
        JSON.stringify({ iss: TOKEN_ISSUER, sub: user ?? '', aud: TOKEN_SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access }),
      );
      const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key);
      const token = `${header}.${claims}.${b64url(signature)}`;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return new TokenServer(`http://127.0.0.1:${port}/token`, certPath, dir, server, issued);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.dir, { recursive: true, force: true });
  }
}
