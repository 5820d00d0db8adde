// A real docker-registry behind token auth whose token server grants per-repository scopes, the
// way Harbor, Docker Hub or GHCR do — what access-control tests need:
//   anonymous  pull on public/*
//   alice      pull on private/* and public/*
//   bob        pull on team/* and public/*
//   admin      everything (it pushes the test images)
// API: `ScopedTokenRegistry.start()`, `push(name, layers)` (an image tagged v1), `bearer(user, repo)`
// (the Authorization a client would send after its own token flow), `url`/`host`, `stop()`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OciLayout, type BuiltLayer, type Descriptor } from './images.ts';
import { TestRegistry } from './registry.ts';
import { TOKEN_ISSUER, TOKEN_SERVICE, TokenServer, type GrantPolicy, type TokenUser } from './token-server.ts';

export type ScopedUser = 'alice' | 'bob' | 'admin';

export const SCOPED_USERS: Readonly<Record<ScopedUser, TokenUser>> = {
  alice: { username: 'alice', password: 'alice-password' },
  bob: { username: 'bob', password: 'bob-password' },
  admin: { username: 'admin', password: 'admin-password' },
};

const PULL_PREFIXES: Readonly<Record<string, readonly string[]>> = {
  '': ['public/'],
  alice: ['private/', 'public/'],
  bob: ['team/', 'public/'],
};

/** The policy above; a repository outside a user's prefixes gets no action at all. */
export const scopedGrant: GrantPolicy = (user, repository, requested) => {
  if (user === 'admin') return requested;
  const prefixes = PULL_PREFIXES[user ?? ''] ?? [];
  return prefixes.some((p) => repository.startsWith(p)) ? requested.filter((a) => a === 'pull') : [];
};

export interface PushedImage {
  readonly name: string;
  readonly manifest: Descriptor;
  readonly layers: readonly BuiltLayer[];
}

export class ScopedTokenRegistry {
  private constructor(
    readonly registry: TestRegistry,
    readonly tokens: TokenServer,
  ) {}

  static async start(): Promise<ScopedTokenRegistry> {
    const tokens = await TokenServer.start(Object.values(SCOPED_USERS), { grant: scopedGrant });
    try {
      const registry = await TestRegistry.start({
        tokenAuth: { realm: tokens.realm, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, rootCertBundle: tokens.certPath, credentials: SCOPED_USERS.admin },
      });
      return new ScopedTokenRegistry(registry, tokens);
    } catch (err) {
      await tokens.stop();
      throw err;
    }
  }

  get url(): string {
    return this.registry.url;
  }

  get host(): string {
    return this.registry.host;
  }

  /** Pushes an image of these layers as `name:v1` (as admin). */
  async push(name: string, layers: readonly BuiltLayer[]): Promise<PushedImage> {
    const dir = await mkdtemp(join(tmpdir(), 'pollen-scoped-'));
    try {
      const layout = new OciLayout(dir);
      const manifest = layout.addImage(layers);
      layout.tag(manifest, 'v1');
      await layout.save();
      await this.registry.push(dir, 'v1', `${name}:v1`);
      return { name, manifest, layers };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** `Bearer …` for `user` (undefined: anonymous) asking to pull `repository`, from the token server itself. */
  async bearer(user: ScopedUser | undefined, repository: string): Promise<string> {
    const url = new URL(this.tokens.realm);
    url.searchParams.set('service', TOKEN_SERVICE);
    url.searchParams.set('scope', `repository:${repository}:pull`);
    const headers: Record<string, string> = {};
    if (user) headers.authorization = `Basic ${Buffer.from(`${SCOPED_USERS[user].username}:${SCOPED_USERS[user].password}`).toString('base64')}`;
    const res = await fetch(url, { headers });
    if (res.status !== 200) throw new Error(`token server answered ${res.status}`);
    const { token } = (await res.json()) as { token: string };
    return `Bearer ${token}`;
  }

  async stop(): Promise<void> {
    await this.registry.stop();
    await this.tokens.stop();
  }
}
