// `pollen pull --mirror`: through a real `pollen peer` in front of a real registry, naming the
// registry by a host that does not resolve, so only the mirror's `?ns=` routing can serve it.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PollenProcess } from '../helpers/pollen.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { busyboxLayer, pollenPull, pushImage, runcRun } from './snapshotter-helpers.ts';

const UPSTREAM_HOST = 'upstream.invalid';

describe('pollen pull through a Pollen peer mirror', () => {
  let registry: TestRegistry;
  let peer: PollenProcess;
  let dir: string;

  beforeAll(async () => {
    registry = await TestRegistry.start();
    dir = await mkdtemp(join(tmpdir(), 'pollen-pullmirror-'));
    await pushImage(registry, join(dir, 'layout'), 'mirror/busybox', [await busyboxLayer()], { Cmd: ['echo', 'through the mirror'] });
    peer = await PollenProcess.peer(['--registry', `${UPSTREAM_HOST}=${registry.url}`]);
  });

  afterAll(async () => {
    await peer?.stop();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('pulls an image of a registry only the mirror knows, and the bundle runs', async () => {
    const bundle = join(dir, 'bundle');
    const { stdout } = await pollenPull(`${UPSTREAM_HOST}/mirror/busybox:latest`, join(dir, 'store'), bundle, ['--mirror', peer.url]);
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toMatchObject({ unpacked: 1, reused: 0 });
    expect((await readFile(join(bundle, 'rootfs/bin/busybox'))).length).toBeGreaterThan(100_000);
    const r = await runcRun(bundle);
    expect(r.stdout.trim()).toBe('through the mirror');
    // The registry saw the blob fetches (from the peer), so the bytes came through the mirror.
    expect(registry.blobGets().length).toBeGreaterThanOrEqual(2);
  });
});
