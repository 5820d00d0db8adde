// `pollen snapshots ls | rm | prune` on a store filled by two `pollen pull`s sharing a base layer.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainIds } from '../../src/oci/image.ts';
import type { Digest } from '../../src/digest.ts';
import { buildTar, makeLayer, type BuiltLayer } from '../helpers/images.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { POLLEN_BIN, pollenPull, pushImage } from './snapshotter-helpers.ts';

const run = promisify(execFile);

describe('pollen snapshots', () => {
  let registry: TestRegistry;
  let dir: string;
  let store: string;
  let base: BuiltLayer;
  let a: BuiltLayer;
  let b: BuiltLayer;

  const pollen = (...args: string[]) => run(process.execPath, [POLLEN_BIN, 'snapshots', ...args, '--root', store]);
  const ls = async () => (await pollen('ls', '--json')).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { chainId: string; bundles: string[] });

  beforeAll(async () => {
    registry = await TestRegistry.start();
    dir = await mkdtemp(join(tmpdir(), 'pollen-snapcli-'));
    store = join(dir, 'store');
    base = makeLayer(await buildTar([{ type: 'file', name: 'base.txt', content: 'base' }]), 'gzip');
    a = makeLayer(await buildTar([{ type: 'file', name: 'a.txt', content: 'a' }]), 'gzip');
    b = makeLayer(await buildTar([{ type: 'file', name: 'b.txt', content: 'b' }]), 'gzip');
    await pollenPull(await pushImage(registry, join(dir, 'la'), 'cli/a', [base, a]), store, join(dir, 'ba'));
    await pollenPull(await pushImage(registry, join(dir, 'lb'), 'cli/b', [base, b]), store, join(dir, 'bb'));
  });

  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('ls lists each snapshot with the bundles that use it', async () => {
    const [ca, cb] = [chainIds([base.diffId, a.diffId] as Digest[])[1]!, chainIds([base.diffId, b.diffId] as Digest[])[1]!];
    const rows = new Map((await ls()).map((r) => [r.chainId, r.bundles]));
    expect(rows.size).toBe(3);
    expect(rows.get(base.diffId)?.sort()).toEqual([join(dir, 'ba'), join(dir, 'bb')]);
    expect(rows.get(ca)).toEqual([join(dir, 'ba')]);
    expect(rows.get(cb)).toEqual([join(dir, 'bb')]);
    expect((await pollen('ls')).stdout).toMatch(/CHAINID\s+PARENT\s+SIZE\s+BUNDLES/);
  });

  it('rm refuses a snapshot a bundle uses', async () => {
    const err = (await pollen('rm', base.diffId).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('ERR_SNAPSHOT_IN_USE');
  });

  it('prune reclaims only what no remaining bundle needs', async () => {
    await rm(join(dir, 'ba'), { recursive: true, force: true });
    expect((await pollen('prune')).stdout).toMatch(/pruned 1 snapshots/);
    const rows = new Map((await ls()).map((r) => [r.chainId, r.bundles]));
    expect([...rows.keys()].sort()).toEqual([base.diffId, chainIds([base.diffId, b.diffId] as Digest[])[1]!].sort());
  });
});
