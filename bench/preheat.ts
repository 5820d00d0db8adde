// Preheat against pull: N `pollen peer` processes with a `pollen supernode`; the N peers pull image
// A at once through their mirrors (skopeo), then a preheat job (all_peers) puts image B (same size
// and layer layout, other bytes) on the same N peers, then the N peers pull B at once (now local).
// Side by side in one run: time until all N hold the image, and the registry blob bytes as a
// multiple of the image size. One machine: every peer shares the same CPUs and disk.
// Usage: npm run bench:preheat [-- --size-mib 256 --peers 8]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { JobsClient } from '../src/preheat/jobs-client.ts';
import { skopeoPullViaMirror } from '../test/helpers/clients.ts';
import { committedSources, pushRandomImage, startP2pPeer, startSupernodeProcess } from '../test/helpers/p2p-cluster.ts';
import type { PollenProcess } from '../test/helpers/pollen.ts';
import { TestRegistry } from '../test/helpers/registry.ts';
import { timed } from './timed.ts';

const MiB = 1 << 20;
const TOKEN = 'bench-admin-token';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '256' }, peers: { type: 'string', default: '8' } } });
  const sizeMiB = Number(values['size-mib']);
  const n = Number(values.peers);
  const registry = await TestRegistry.start();
  const dir = await mkdtemp(join(tmpdir(), 'pollen-bench-preheat-'));
  const procs: PollenProcess[] = [];
  try {
    const half = Math.floor(sizeMiB / 2);
    const quarter = Math.floor((sizeMiB - half) / 2);
    const layout = [half * MiB, quarter * MiB, (sizeMiB - half - quarter) * MiB];
    const pulled = await pushRandomImage(registry, 'bench/pulled', layout);
    const preheated = await pushRandomImage(registry, 'bench/preheated', layout);

    const supernode = await startSupernodeProcess(registry, ['--log-level', 'info', '--admin-token', TOKEN]);
    procs.push(supernode);
    // Tracked as each starts, so a failed start does not leak the others.
    const peers = await Promise.all(Array.from({ length: n }, () => startP2pPeer(registry, supernode.url, ['--log-level', 'info']).then((p) => (procs.push(p), p))));
    const sum = (k: 'peer' | 'seed' | 'upstream') => peers.map((p) => committedSources(p.output())).reduce((a, s) => a + s[k], 0);
    // Peers have registered once they logged it.
    while (!peers.every((p) => p.output().includes('"msg":"registered with the supernode"'))) await sleep(200);

    // Baseline: the n peers pull image A at once.
    let before = registry.blobBytesSent();
    const pullMs = await timed(() => Promise.all(peers.map((p, i) => skopeoPullViaMirror(p.host, pulled.ref, join(dir, `pull-${i}`)))));
    const pullBytes = registry.blobBytesSent() - before;
    const pullFromPeers = sum('peer');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });

    // Preheat image B to the same n peers.
    const client = new JobsClient({ baseUrl: supernode.adminUrl, token: TOKEN });
    before = registry.blobBytesSent();
    const beforePeers = sum('peer');
    let job = await client.create({ type: 'preheat', args: { image: `${registry.host}/${preheated.ref}`, scope: 'all_peers' } });
    const preheatMs = await timed(async () => {
      while (job.phase !== 'succeeded' && job.phase !== 'failed') {
        await sleep(100);
        job = await client.get(job.id);
      }
    });
    if (job.phase !== 'succeeded') throw new Error(`preheat failed: ${job.reason}`);
    const preheatBytes = registry.blobBytesSent() - before;
    const preheatFromPeers = sum('peer') - beforePeers;

    // After the preheat: the n peers pull B at once (from their stores).
    before = registry.blobBytesSent();
    const warmMs = await timed(() => Promise.all(peers.map((p, i) => skopeoPullViaMirror(p.host, preheated.ref, join(dir, `warm-${i}`)))));
    const warmBytes = registry.blobBytesSent() - before;

    const result = {
      bench: 'preheat',
      sizeMiB,
      imageBytes: preheated.size,
      peers: n,
      preheatAllDoneMs: Math.round(preheatMs),
      pullAllDoneMs: Math.round(pullMs),
      preheatVsPull: preheatMs / pullMs,
      pullAfterPreheatMs: Math.round(warmMs),
      pullAfterPreheatVsPull: warmMs / pullMs,
      preheatRegistryXImage: preheatBytes / preheated.size,
      pullRegistryXImage: pullBytes / pulled.size,
      pullAfterPreheatRegistryBytes: warmBytes,
      preheatBytesFromPeers: preheatFromPeers,
      pullBytesFromPeers: pullFromPeers,
    };
    console.log(JSON.stringify(result));
    const f = (x: number, d = 1) => x.toFixed(d);
    console.log(`\nPreheat vs pull: ${n} peers, ${sizeMiB} MiB image (3 layers), one machine\n`);
    console.log('| measure                       | preheat (all_peers) | n pulls at once | ratio  |');
    console.log('| ----------------------------- | ------------------- | --------------- | ------ |');
    console.log(`| time until all n hold it (s)  | ${f(preheatMs / 1000).padStart(19)} | ${f(pullMs / 1000).padStart(15)} | ${f(result.preheatVsPull, 2).padStart(5)}x |`);
    console.log(`| registry blob bytes (x image) | ${f(result.preheatRegistryXImage, 2).padStart(19)} | ${f(result.pullRegistryXImage, 2).padStart(15)} |        |`);
    console.log(`| bytes peers sent each other   | ${f(preheatFromPeers / MiB, 0).padStart(15)} MiB | ${f(pullFromPeers / MiB, 0).padStart(11)} MiB |        |`);
    console.log(`\nAfter the preheat, the ${n} pulls at once took ${f(warmMs / 1000, 2)} s (${f(result.pullAfterPreheatVsPull, 3)}x the cold pulls), registry blob bytes: ${warmBytes}`);
  } finally {
    // Warnings and fallbacks the daemons logged, for post-mortems.
    const lines = procs.flatMap((p, i) => p.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l) || /"msg":"(no P2P task from this supernode|P2P stalled[^"]*|preheat[^"]*)"/.test(l)).map((l) => `[${i}] ${l}`));
    await writeFile(join(tmpdir(), 'pollen-bench-preheat.log'), lines.join('\n'));
    for (const p of procs) await p.stop().catch(() => {});
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
