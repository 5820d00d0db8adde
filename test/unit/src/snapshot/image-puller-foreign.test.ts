// A foreign (non-distributable) layer that the registry does not have is refused with a clear
// error before anything is committed. A minimal in-process registry serves the manifest and config.
import { createServer, type Server } from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPollenError } from '../../../../src/errors.ts';
import { FsContentStore } from '../../../../src/fs-content-store.ts';
import { MediaType } from '../../../../src/oci/media-types.ts';
import { RegistryClient } from '../../../../src/oci/registry-client.ts';
import { pullImage } from '../../../../src/snapshot/image-puller.ts';
import { SnapshotStore } from '../../../../src/snapshot/snapshot-store.ts';
import { sha256 } from '../../../helpers/images.ts';

describe('foreign layers', () => {
  let server: Server;
  let url: string;
  let dir: string;
  const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', config: {}, rootfs: { type: 'layers', diff_ids: [sha256('tar')] } }));
  const layer = { mediaType: MediaType.DockerLayerForeignGzip, digest: sha256('foreign blob'), size: 12, urls: ['https://example.invalid/layer.tar.gz'] };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: { mediaType: MediaType.DockerConfig, digest: sha256(config), size: config.length }, layers: [layer] }));
  const queries: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-foreign-'));
    server = createServer((req, res) => {
      queries.push(new URL(req.url ?? '/', 'http://x').search);
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/v2/ns/img/manifests/latest') res.writeHead(200, { 'content-type': MediaType.DockerManifest }).end(manifest);
      else if (path === `/v2/ns/img/blobs/${sha256(config)}`) res.writeHead(200).end(config);
      else res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('is refused with ERR_LAYER_FOREIGN naming where it lives; nothing is committed; the ns query is sent', async () => {
    const snapshots = await SnapshotStore.open(join(dir, 'store'));
    const content = await FsContentStore.open(join(dir, 'store', 'content'));
    const client = new RegistryClient({}, { baseUrl: url, query: { ns: 'registry.example' } });
    const err = await pullImage({ client, snapshots, content }, { name: 'ns/img', reference: 'latest', platform: { os: 'linux', architecture: 'amd64' }, bundleDir: join(dir, 'b'), imageName: 'x' }).catch((e: unknown) => e);
    expect(isPollenError(err, 'ERR_LAYER_FOREIGN')).toBe(true);
    expect((err as Error).message).toContain('https://example.invalid/layer.tar.gz');
    expect(await snapshots.list()).toEqual([]);
    expect(await readdir(join(dir, 'store', 'tmp'))).toEqual([]);
    expect(queries.every((q) => q === '?ns=registry.example')).toBe(true);
  });
});
