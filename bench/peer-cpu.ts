// CPU a peer spends per byte on its data path, on loopback without caps: the figure that bounds
// fan-out on the two-core test bed (bench fanout), where every peer shares the same cores.
// Pulls of one image through `pollen peer` processes, each by skopeo through its own peer:
//   (a) mirror:  a peer without a supernode pulls from the registry (the registry-mirror path);
//   (b) seed:    peer A pulls through P2P; every piece comes from the supernode's seed;
//   (c) p2p:     peer B pulls through P2P with A holding everything: every piece comes from A.
// (b) and (c) run twice, in two clusters side by side: without a secret (plain TCP wire, allowed on
// loopback only) and with one (the wire is TLS 1.3 with the cluster's pre-shared key), so the cost
// of encryption on the downloading (B) and uploading (A) peer is measured in the same run.
// For each, CPU seconds (user + system, from /proc) of the peers involved, per GiB of image, and
// skopeo's wall time; (a) is the baseline of the same run (the ratios are what to compare across
// machines). Usage: npm run bench:peer-cpu [-- --size-mib 256]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateSecret } from '../src/cluster-tls.ts';
import { skopeoPullViaMirror, UPSTREAM_HOST } from '../test/helpers/clients.ts';
import { committedSources, pushRandomImage, startP2pPeer, startSupernodeProcess } from '../test/helpers/p2p-cluster.ts';
import { PollenProcess } from '../test/helpers/pollen.ts';
import { TestRegistry } from '../test/helpers/registry.ts';
import { requireTool } from '../test/helpers/tools.ts';
import { cpuDetail } from './testbed/process-stats.ts';
import { timed } from './timed.ts';

const MiB = 1 << 20;

function cpuSeconds(proc: PollenProcess): { user: number; sys: number; faults: number } {
  const d = cpuDetail(proc.pid ?? 0);
  if (!d) throw new Error(`process ${proc.pid} is gone`);
  return { user: d.userS, sys: d.systemS, faults: d.minorFaults };
}

interface Row {
  readonly pull: string;
  readonly seconds: number;
  /** CPU seconds (user + system) per process, and the system part alone. */
  readonly cpu: Record<string, number>;
  readonly sys: Record<string, number>;
  /** Minor page faults per process (first touches of fresh memory: costly on this kind of VM). */
  readonly faults: Record<string, number>;
}

async function measure(pull: string, procs: Record<string, PollenProcess>, run: () => Promise<void>): Promise<Row> {
  const before = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, cpuSeconds(p)] as const));
  const ms = await timed(run);
  const cpu: Record<string, number> = {};
  const sys: Record<string, number> = {};
  const faults: Record<string, number> = {};
  for (const [k, p] of Object.entries(procs)) {
    const after = cpuSeconds(p);
    sys[k] = after.sys - before[k]!.sys;
    cpu[k] = after.user - before[k]!.user + sys[k];
    faults[k] = after.faults - before[k]!.faults;
  }
  return { pull, seconds: ms / 1000, cpu, sys, faults };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '256' } } });
  const sizeMiB = Number(values['size-mib']);
  requireTool('skopeo', 'skopeo');
  const registry = await TestRegistry.start();
  const dir = await mkdtemp(join(tmpdir(), 'pollen-bench-cpu-'));
  const procs: PollenProcess[] = [];
  const quiet = ['--log-level', 'info'];
  try {
    const image = await pushRandomImage(registry, 'bench/cpu', [sizeMiB * MiB]);
    const gib = image.size / (1 << 30);

    const mirror = await PollenProcess.peer(['--upstream', registry.url, '--registry', `${UPSTREAM_HOST}=${registry.url}`, ...quiet]);
    procs.push(mirror);
    const a0 = await measure('mirror: registry -> peer -> skopeo', { peer: mirror }, () => skopeoPullViaMirror(mirror.host, image.ref, join(dir, 'mirror')));

    // One cluster per wire: plain TCP (no secret) and TLS (a strong secret); the same pulls in each.
    const clusters: Array<{ wire: 'plain' | 'tls'; seed: Row; p2p: Row; fromPeers: number }> = [];
    for (const wire of ['plain', 'tls'] as const) {
      const secretArgs = ['--secret', wire === 'tls' ? generateSecret() : ''];
      const supernode = await startSupernodeProcess([...quiet, ...secretArgs]);
      procs.push(supernode);
      const a = await startP2pPeer(registry, supernode.url, [...quiet, ...secretArgs]);
      const b = await startP2pPeer(registry, supernode.url, [...quiet, ...secretArgs]);
      procs.push(a, b);
      const seed = await measure(`seed (${wire}): supernode -> peer A`, { supernode, peerA: a }, () => skopeoPullViaMirror(a.host, image.ref, join(dir, `a-${wire}`)));
      const p2p = await measure(`p2p (${wire}): peer A -> peer B`, { peerA: a, peerB: b }, () => skopeoPullViaMirror(b.host, image.ref, join(dir, `b-${wire}`)));
      clusters.push({ wire, seed, p2p, fromPeers: committedSources(b.output()).peer });
    }
    const plain = clusters[0]!;
    const tls = clusters[1]!;

    const rows = [a0, ...clusters.flatMap((c) => [c.seed, c.p2p])];
    const perGiB = (s: number) => s / gib;
    const baseline = perGiB(a0.cpu.peer!);
    const wireCpu = (c: (typeof clusters)[number]) => ({ downloaderCpuSPerGiB: +perGiB(c.p2p.cpu.peerB!).toFixed(2), uploaderCpuSPerGiB: +perGiB(c.p2p.cpu.peerA!).toFixed(2), seconds: +c.p2p.seconds.toFixed(2) });
    const fromPeers = Math.min(plain.fromPeers, tls.fromPeers);
    const result = {
      bench: 'peer-cpu',
      sizeMiB,
      imageBytes: image.size,
      bFromPeersBytes: fromPeers,
      pulls: rows.map((r) => ({
        pull: r.pull,
        seconds: +r.seconds.toFixed(2),
        cpuSPerGiB: Object.fromEntries(Object.entries(r.cpu).map(([k, v]) => [k, +perGiB(v).toFixed(2)])),
        sysSPerGiB: Object.fromEntries(Object.entries(r.sys).map(([k, v]) => [k, +perGiB(v).toFixed(2)])),
        pageFaultsPerGiB: Object.fromEntries(Object.entries(r.faults).map(([k, v]) => [k, Math.round(perGiB(v))])),
      })),
      downloaderXMirror: +(perGiB(tls.p2p.cpu.peerB!) / baseline).toFixed(2),
      uploaderXMirror: +(perGiB(tls.p2p.cpu.peerA!) / baseline).toFixed(2),
      wire: {
        plain: wireCpu(plain),
        tls: wireCpu(tls),
        downloaderTlsOverPlain: +(tls.p2p.cpu.peerB! / plain.p2p.cpu.peerB!).toFixed(3),
        uploaderTlsOverPlain: +(tls.p2p.cpu.peerA! / plain.p2p.cpu.peerA!).toFixed(3),
      },
    };
    console.log(JSON.stringify(result));
    console.log(`\npeer CPU per GiB on loopback, ${sizeMiB} MiB image, no caps (baseline: the mirror path, same run)\n`);
    console.log('| pull                                 | wall s | process: CPU s per GiB (x mirror) [of it system; page faults per GiB]          |');
    console.log('| ------------------------------------ | ------ | ------------------------------------------------------------------------------ |');
    for (const r of rows) {
      const cells = Object.entries(r.cpu)
        .map(([k, v]) => `${k} ${perGiB(v).toFixed(2)} (${(perGiB(v) / baseline).toFixed(2)}x) [${perGiB(r.sys[k]!).toFixed(2)}; ${(perGiB(r.faults[k]!) / 1000).toFixed(0)}k]`)
        .join(', ');
      console.log(`| ${r.pull.padEnd(36)} | ${r.seconds.toFixed(1).padStart(6)} | ${cells.padEnd(78)} |`);
    }
    console.log(`\nwire encryption (TLS 1.3 PSK, AES-128-GCM) against plain TCP, CPU s per GiB: downloading peer B ${perGiB(plain.p2p.cpu.peerB!).toFixed(2)} -> ${perGiB(tls.p2p.cpu.peerB!).toFixed(2)} (${((result.wire.downloaderTlsOverPlain - 1) * 100).toFixed(0)} %), uploading peer A ${perGiB(plain.p2p.cpu.peerA!).toFixed(2)} -> ${perGiB(tls.p2p.cpu.peerA!).toFixed(2)} (${((result.wire.uploaderTlsOverPlain - 1) * 100).toFixed(0)} %)`);
    console.log(`peer B got at least ${(fromPeers / MiB).toFixed(0)} of ${(image.size / MiB).toFixed(0)} MiB from peers in each cluster`);
    if (fromPeers < image.size * 0.9) throw new Error(`peer B got only ${fromPeers} of ${image.size} bytes from peer A: the p2p row does not measure the peer path`);
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
