// The daemons' metrics as a real Prometheus sees them: Debian's `prometheus` scrapes a real
// supernode's admin listener and two real peers' metrics listeners every second while peer B pulls
// a layer that peer A fetched first (P2P); queries through its HTTP API must return the bytes by
// source and the latency series with non-zero values. Also, through the same processes: the
// access log line of a P2P pull, and /readyz turning 503 with the reason when the supernode goes.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushRandomImage, startP2pPeer, startSupernodeProcess, type ImageFixture } from '../helpers/p2p-cluster.ts';
import type { PollenProcess } from '../helpers/pollen.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { freePort, httpOk, requireTool, spawnLogged, stopProcess, waitFor } from '../helpers/tools.ts';

const MiB = 1 << 20;
let registry: TestRegistry;
let image: ImageFixture;
let supernode: PollenProcess;
let peerA: PollenProcess;
let peerB: PollenProcess;
let prometheus: { child: ChildProcess; output: () => string; url: string };
let dir: string;
const procs: PollenProcess[] = [];

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(promql: string): Promise<Sample[]> {
  const res = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as { status: string; data?: { result: Sample[] }; error?: string };
  if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
  return body.data!.result;
}

/** Waits until the query returns a series for every label value in `want` (by `label`) above zero. */
async function waitPositive(promql: string, label: string | undefined, want: readonly string[] = ['']): Promise<Sample[]> {
  let last: Sample[] = [];
  await waitFor(
    async () => {
      last = await query(promql);
      return want.every((v) => last.some((s) => (label ? s.metric[label] === v : true) && Number(s.value[1]) > 0));
    },
    `${promql} > 0 for ${want.join(', ')}`,
    60_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last answer: ${JSON.stringify(last)}`);
  });
  return last;
}

async function pullBlob(p: PollenProcess, digest: string): Promise<number> {
  const res = await fetch(`${p.url}/v2/prom/app/blobs/${digest}`);
  if (res.status !== 200) throw new Error(`pull through ${p.url}: ${res.status}`);
  return (await res.arrayBuffer()).byteLength;
}

beforeAll(async () => {
  const bin = requireTool('prometheus', 'prometheus');
  registry = await TestRegistry.start();
  image = await pushRandomImage(registry, 'prom/app', [12 * MiB]);
  supernode = await startSupernodeProcess(registry);
  procs.push(supernode);
  for (const p of await Promise.all([startP2pPeer(registry, supernode.url), startP2pPeer(registry, supernode.url)])) procs.push(p);
  [peerA, peerB] = procs.slice(1) as [PollenProcess, PollenProcess];
  await waitFor(async () => procs.slice(1).every((p) => /registered with the supernode/.test(p.output())), 'peers registered', 60_000);

  dir = await mkdtemp(join(tmpdir(), 'pollen-prometheus-'));
  const host = (u: string): string => new URL(u).host;
  await writeFile(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      `  - { job_name: pollen-peer, static_configs: [ { targets: ["${host(peerA.metricsUrl)}", "${host(peerB.metricsUrl)}"] } ] }`,
      `  - { job_name: pollen-supernode, static_configs: [ { targets: ["${host(supernode.adminUrl)}"] } ] }`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const { child, output } = spawnLogged(bin, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`]);
  prometheus = { child, output, url: `http://127.0.0.1:${port}` };
  await waitFor(async () => child.exitCode === null && (await httpOk(`${prometheus.url}/-/ready`)), 'prometheus ready', 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${output().slice(-3000)}`);
  });
}, 300_000);

afterAll(async () => {
  if (prometheus) await stopProcess(prometheus.child);
  await Promise.all(procs.map((p) => p.stop()));
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('metrics scraped by a real Prometheus', () => {
  it('returns bytes by source and the latency series, non-zero, for a P2P pull', async () => {
    const layer = image.layers[0]!;
    const digest = layer.descriptor.digest;
    expect(await pullBlob(peerA, digest)).toBe(layer.blob.length);
    expect(await pullBlob(peerB, digest)).toBe(layer.blob.length);
    // Once B committed the blob (the last byte reaches the client just before), a pull is a hit.
    await waitFor(async () => peerB.output().includes('"msg":"blob committed"'), 'B committed the blob', 30_000);
    expect(await pullBlob(peerB, digest)).toBe(layer.blob.length);

    // All three targets scraped (the query is empty until they are).
    await waitPositive('count(up{job=~"pollen-.*"} == 1) == 3', undefined);

    // Peer A got the layer from the seed, peer B from A; the supernode's seed fetched it from the registry.
    const bySource = await waitPositive('sum by (source) (pollen_peer_bytes_total{direction="download"})', 'source', ['seed', 'remote_peer']);
    const total = bySource.reduce((n, s) => n + Number(s.value[1]), 0);
    expect(total).toBeGreaterThanOrEqual(2 * layer.blob.length);
    await waitPositive('sum by (source) (pollen_peer_bytes_total{direction="upload"})', 'source', ['remote_peer', 'local_cache']);
    await waitPositive('sum by (direction) (pollen_supernode_seed_bytes_total)', 'direction', ['download', 'upload']);
    // A's pieces came from the seed on grants of pieces nobody held.
    await waitPositive('sum by (kind) (pollen_supernode_seed_grants_total)', 'kind', ['unheld']);

    await waitPositive('sum by (outcome) (pollen_peer_mirror_request_duration_seconds_count{kind="blob"})', 'outcome', ['hit', 'miss']);
    await waitPositive('sum by (outcome) (pollen_peer_mirror_request_duration_seconds_sum{kind="blob"})', 'outcome', ['hit', 'miss']);
    await waitPositive('histogram_quantile(0.99, sum by (le) (pollen_peer_mirror_request_duration_seconds_bucket{kind="blob",outcome="miss"}))', undefined);
    await waitPositive('pollen_supernode_syncs_total', undefined);
    await waitPositive('pollen_supernode_sync_duration_seconds_sum', undefined);
    await waitPositive('pollen_supernode_peers', undefined);
    // The peers' daemons sync on channels, not HTTP requests (both ends say so).
    await waitPositive('pollen_supernode_sync_channels', undefined);
    await waitPositive('sum by (via) (pollen_sync_batches_total)', 'via', ['channel']);
    await waitPositive('sum by (via) (pollen_task_creations_total)', 'via', ['channel']);
    await waitPositive('sum by (via) (pollen_seed_piece_requests_total)', 'via', ['channel']);
  }, 180_000);

  it('logs one access line per mirror request with the source of the bytes', () => {
    const lines = peerB.output().split('\n').filter((l) => l.includes('"msg":"access"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const blobLines = lines.filter((l) => String(l.path).includes('/blobs/') && l.method === 'GET');
    expect(blobLines.map((l) => l.source)).toEqual(['peer', 'local']);
    for (const l of blobLines) expect(l).toMatchObject({ status: 200, bytes: image.layers[0]!.blob.length, ms: expect.any(Number) });
  });

  it('answers /readyz 200 while the supernode is there, 503 with the reason when it is gone', async () => {
    const ready = await fetch(`${peerB.metricsUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { store: 'ok', metadata: 'ok', supernode: 'ok', upstream: 'ok' } });
    const snReady = await fetch(`${supernode.adminUrl}/readyz`);
    expect(await snReady.json()).toEqual({ status: 'ready', checks: { 'seed-store': 'ok', metadata: 'ok', upstream: 'ok' } });
    await supernode.stop();
    let body: { status?: string; checks?: Record<string, string> } = {};
    await waitFor(async () => {
      const res = await fetch(`${peerB.metricsUrl}/readyz`);
      body = (await res.json()) as typeof body;
      return res.status === 503;
    }, 'peer not ready', 30_000);
    expect(body.status).toBe('not ready');
    expect(body.checks?.supernode).toMatch(/not registered with any supernode/);
    expect(body.checks?.upstream).toBe('ok');
    expect((await fetch(`${peerB.metricsUrl}/healthz`)).status).toBe(200);
  }, 60_000);
});
