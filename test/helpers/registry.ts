// A real CNCF distribution registry (Debian's docker-registry) for tests and benchmarks, on a
// random loopback port, optionally with htpasswd auth, with its access log parsed to count what it sent.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { OciLayout, randomFileLayer, type BuiltLayer } from './images.ts';
import { execFileP, freePort, requireTool, spawnLogged, stopProcess, waitFor } from './tools.ts';

export interface AccessLogEntry {
  method: string;
  path: string;
  status: number;
  bytes: number;
}

export class TestRegistry {
  private constructor(
    readonly url: string,
    readonly host: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
    private readonly output: () => string,
    readonly credentials: { username: string; password: string } | undefined,
  ) {}

  static async start(
    options: { auth?: { username: string; password: string }; tokenAuth?: { realm: string; service: string; issuer: string; rootCertBundle: string; credentials: { username: string; password: string } }; proxyRemote?: string } = {},
  ): Promise<TestRegistry> {
    const bin = requireTool('docker-registry', 'docker-registry');
    const dir = await mkdtemp(join(tmpdir(), 'pollen-registry-'));
    const port = await freePort();
    let auth = '';
    if (options.auth) {
      const htpasswd = requireTool('htpasswd', 'apache2-utils');
      await execFileP(htpasswd, ['-Bbc', join(dir, 'htpasswd'), options.auth.username, options.auth.password]);
      auth = `auth: { htpasswd: { realm: pollen, path: ${join(dir, 'htpasswd')} } }\n`;
    }
    if (options.tokenAuth) {
      const t = options.tokenAuth;
      auth = `auth: { token: { realm: "${t.realm}", service: ${t.service}, issuer: ${t.issuer}, rootcertbundle: ${t.rootCertBundle} } }\n`;
    }
    const proxy = options.proxyRemote ? `proxy: { remoteurl: ${options.proxyRemote} }\n` : '';
    await writeFile(
      join(dir, 'config.yml'),
      `version: 0.1\nlog: { level: info, accesslog: { disabled: false } }\n` +
        `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} }, delete: { enabled: true } }\n` +
        `http: { addr: 127.0.0.1:${port} }\n${auth}${proxy}`,
    );
    const { child, output } = spawnLogged(bin, ['serve', join(dir, 'config.yml')]);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/v2/`)).status < 500, `registry on ${url}`);
    return new TestRegistry(url, `127.0.0.1:${port}`, dir, child, output, options.auth ?? options.tokenAuth?.credentials);
  }

  /** Requests logged so far (Apache combined lines of the access log). */
  accessLog(): AccessLogEntry[] {
    const out: AccessLogEntry[] = [];
    for (const m of this.output().matchAll(/"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-)/g)) {
      out.push({ method: m[1]!, path: m[2]!, status: Number(m[3]), bytes: m[4] === '-' ? 0 : Number(m[4]) });
    }
    return out;
  }

  /** Blob GETs logged so far, and the bytes they sent. */
  blobGets(digest?: string): AccessLogEntry[] {
    return this.accessLog().filter((e) => e.method === 'GET' && e.path.includes('/blobs/') && (!digest || e.path.includes(digest)));
  }

  /** The registry process's pid (the benches read its CPU from /proc). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  blobBytesSent(): number {
    return this.blobGets().reduce((n, e) => n + e.bytes, 0);
  }

  /** Pushes an image from an OCI layout with skopeo. `all` pushes every manifest of an index. */
  async push(layoutDir: string, tag: string, dest: string, options: { all?: boolean; format?: 'oci' | 'v2s2' } = {}): Promise<void> {
    const skopeo = requireTool('skopeo', 'skopeo');
    const args = ['copy', '--quiet', '--dest-tls-verify=false', '--insecure-policy'];
    if (options.all) args.push('--all');
    if (options.format) args.push('--format', options.format);
    if (this.credentials) args.push('--dest-creds', `${this.credentials.username}:${this.credentials.password}`);
    args.push(`oci:${layoutDir}:${tag}`, `docker://${this.host}/${dest}`);
    await execFileP(skopeo, args, { maxBuffer: 16 << 20 });
  }

  /**
   * Pushes an image of random-file layers (gzip), one per `{ seed, bytes }`, as `dest`, from an OCI
   * layout in a new directory that the caller removes.
   */
  async pushRandomImage<const L extends ReadonlyArray<{ seed: string; bytes: number }>>(dest: string, layers: L): Promise<{ layers: { [K in keyof L]: BuiltLayer }; layoutDir: string }> {
    const layoutDir = await mkdtemp(join(tmpdir(), 'pollen-layout-'));
    try {
      const layout = new OciLayout(layoutDir);
      const built: BuiltLayer[] = [];
      for (const l of layers) built.push(await randomFileLayer(l.seed, l.bytes, 'gzip'));
      layout.tag(layout.addImage(built), 'v1');
      await layout.save();
      await this.push(layoutDir, 'v1', dest);
      return { layers: built as unknown as { [K in keyof L]: BuiltLayer }, layoutDir };
    } catch (err) {
      // Nobody else knows the directory yet.
      await rm(layoutDir, { recursive: true, force: true });
      throw err;
    }
  }

  async stop(): Promise<void> {
    await stopProcess(this.child);
    await rm(this.dir, { recursive: true, force: true });
  }
}
