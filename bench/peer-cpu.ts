// CPU a peer spends per byte on its data path, on loopback without caps: the figure that bounds
// fan-out on the two-core test bed (bench fanout), where every peer shares the same cores.
// Pulls of one image through `pollen peer` processes, each by skopeo through its own peer:
//   (a) mirror:  a peer without a supernode pulls from the registry (the registry-mirror path);
//   (b) seed:    peer A pulls through P2P; every piece comes from the supernode's seed;
//   (c) p2p:     peer B pulls through P2P with A holding everything: every piece comes from A; a
//                second B then pulls with A and the first B as its parents (the uploading side is
//                the two together: with the scheduler free to pick either, A alone read 0 s).
// (b) and (c) run in two clusters side by side: without a secret (plain TCP wire and plain HTTP API,
// allowed on loopback only) and with one (the wire and the supernode API are TLS 1.3 with keys
// derived from the cluster secret), so the cost of encryption on the downloading (B) and uploading
// (A) peer, and on the seed path, is measured in the same run.
// For each, CPU seconds (user + system, from /proc) of the peers involved, per GiB of image, and
// skopeo's wall time; (a) is the baseline of the same run (the ratios are what to compare across
// machines). The floors: curl fetching the same blob straight from the registry (its CPU under GNU
// time), what any client pays to receive the bytes at all, to /dev/null and to a new file (what a
// client that keeps the blob, as a peer does, pays at least). Every measured pull and floor writes
// into memory the kernel has handed out before (touchMemory), as on a host that has run a while,
// and a VM that hands freed memory back to its host keeps it for the run (testbed/vm-memory.ts).
// Usage: npm run bench:peer-cpu [-- --size-mib 256] [--vm-memory as-is]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateSecret } from '../src/cluster-tls.ts';
import { skopeoPullViaMirror, UPSTREAM_HOST } from '../test/helpers/clients.ts';
import { committedSources, pushRandomImage, startP2pPeer, startSupernodeProcess } from '../test/helpers/p2p-cluster.ts';
import { PollenProcess } from '../test/helpers/pollen.ts';
import { TestRegistry } from '../test/helpers/registry.ts';
import { execFileP, requireTool } from '../test/helpers/tools.ts';
import { cpuDetail, GNU_TIME_FORMAT, parseGnuTime } from './testbed/process-stats.ts';
import { touchMemory } from './testbed/touch-memory.ts';
import { holdFreedMemory, parseVmMemory } from './testbed/vm-memory.ts';
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

async function measure(pull: string, procs: Record<string, PollenProcess>, run: () => Promise<void>, touch: () => Promise<void>): Promise<Row> {
  await touch();
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
  const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '256' }, 'vm-memory': { type: 'string', default: 'hold' } } });
  const sizeMiB = Number(values['size-mib']);
  const vmMemory = parseVmMemory(values['vm-memory']);
  requireTool('skopeo', 'skopeo');
  const hold = vmMemory === 'hold' ? holdFreedMemory() : undefined;
  const registry = await TestRegistry.start();
  const dir = await mkdtemp(join(tmpdir(), 'pollen-bench-cpu-'));
  const procs: PollenProcess[] = [];
  const quiet = ['--log-level', 'info'];
  try {
    const image = await pushRandomImage(registry, 'bench/cpu', [sizeMiB * MiB]);
    const gib = image.size / (1 << 30);
    // The most one pull keeps: the seed path's supernode store, peer A's store and skopeo's copy.
    const touch = () => touchMemory(dir, 3 * image.size);

    const mirror = await PollenProcess.peer(['--upstream', registry.url, '--registry', `${UPSTREAM_HOST}=${registry.url}`, ...quiet]);
    procs.push(mirror);
    const a0 = await measure('mirror: registry -> peer -> skopeo', { peer: mirror }, () => skopeoPullViaMirror(mirror.host, image.ref, join(dir, 'mirror')), touch);
    // The floor: curl receiving the layer straight from the registry, to /dev/null; and to a new
    // file, kept to the end as the peers' stores are, which is what a client that keeps the blob
    // pays at least; into touched memory, as every row (touchMemory).
    const layer = image.layers[0]!;
    const curlFloor = async (output: string): Promise<number> => {
      await touch();
      const run = await execFileP('/usr/bin/time', ['-f', GNU_TIME_FORMAT, requireTool('curl', 'curl'), '-sf', '-o', output, `${registry.url}/v2/${image.ref.split(':')[0]}/blobs/${layer.descriptor.digest}`]);
      const usage = parseGnuTime(run.stderr);
      if (!usage) throw new Error(`GNU time gave no usage for curl: ${run.stderr}`);
      return usage.cpuSeconds / (layer.blob.length / (1 << 30));
    };
    const curlCpuPerGiB = await curlFloor('/dev/null');
    const curlToFileCpuPerGiB = await curlFloor(join(dir, 'curl-layer'));

    // One cluster per wire: plain TCP (no secret) and TLS (a strong secret), each with a peer A and
    // two downloaders. The pulls alternate between the clusters (seed: plain, tls; p2p: plain, tls,
    // tls, plain) so a change in the shared machine's load weighs on both sides alike.
    type Wire = 'plain' | 'tls';
    const clusters = new Map<Wire, { a: PollenProcess; bs: PollenProcess[]; supernode: PollenProcess }>();
    for (const wire of ['plain', 'tls'] as const) {
      const secretArgs = ['--secret', wire === 'tls' ? generateSecret() : ''];
      const supernode = await startSupernodeProcess(registry, [...quiet, ...secretArgs]);
      procs.push(supernode);
      const a = await startP2pPeer(registry, supernode.url, [...quiet, ...secretArgs]);
      const bs = [await startP2pPeer(registry, supernode.url, [...quiet, ...secretArgs]), await startP2pPeer(registry, supernode.url, [...quiet, ...secretArgs])];
      procs.push(a, ...bs);
      clusters.set(wire, { a, bs, supernode });
    }
    const seedRows = new Map<Wire, Row>();
    for (const wire of ['plain', 'tls'] as const) {
      const { a, supernode } = clusters.get(wire)!;
      seedRows.set(wire, await measure(`seed (${wire}): supernode -> peer A`, { supernode, peerA: a }, () => skopeoPullViaMirror(a.host, image.ref, join(dir, `a-${wire}`)), touch));
    }
    const p2pRows: Array<{ wire: Wire; row: Row }> = [];
    for (const [wire, round] of [['plain', 0], ['tls', 0], ['tls', 1], ['plain', 1]] as const) {
      const { a, bs } = clusters.get(wire)!;
      // The second B's parents are A and the first B (both hold the image, and the scheduler may
      // pick either or both): the uploading side is the two together.
      const uploaders: Record<string, PollenProcess> = round === 0 ? { peerA: a } : { peerA: a, peerB1: bs[0]! };
      const row = await measure(`p2p (${wire}) #${round + 1}: peer A -> peer B`, { ...uploaders, peerB: bs[round]! }, () => skopeoPullViaMirror(bs[round]!.host, image.ref, join(dir, `b-${wire}-${round}`)), touch);
      p2pRows.push({ wire, row });
    }
    const fromPeers = Math.min(...[...clusters.values()].flatMap((c) => c.bs.map((b) => committedSources(b.output()).peer)));

    const rows = [a0, seedRows.get('plain')!, seedRows.get('tls')!, ...p2pRows.map((r) => r.row)];
    const perGiB = (s: number) => s / gib;
    const baseline = perGiB(a0.cpu.peer!);
    /** CPU s per GiB of one role in the p2p pulls of one cluster, averaged over its rounds (the uploading side: peer A and, in round 2, the first B). */
    const wireCpu = (wire: Wire, role: 'peerA' | 'peerB') => {
      const mine = p2pRows.filter((r) => r.wire === wire);
      const of = (row: Row) => (role === 'peerA' ? row.cpu.peerA! + (row.cpu.peerB1 ?? 0) : row.cpu.peerB!);
      return perGiB(mine.reduce((n, r) => n + of(r.row), 0) / mine.length);
    };
    const wireOf = (wire: Wire) => ({ downloaderCpuSPerGiB: +wireCpu(wire, 'peerB').toFixed(2), uploaderCpuSPerGiB: +wireCpu(wire, 'peerA').toFixed(2) });
    const overPlain = (role: 'peerA' | 'peerB') => +(wireCpu('tls', role) / wireCpu('plain', role)).toFixed(3);
    const result = {
      bench: 'peer-cpu',
      sizeMiB,
      vmMemory: hold?.state ?? 'not asked',
      imageBytes: image.size,
      bFromPeersBytes: fromPeers,
      pulls: rows.map((r) => ({
        pull: r.pull,
        seconds: +r.seconds.toFixed(2),
        cpuSPerGiB: Object.fromEntries(Object.entries(r.cpu).map(([k, v]) => [k, +perGiB(v).toFixed(2)])),
        sysSPerGiB: Object.fromEntries(Object.entries(r.sys).map(([k, v]) => [k, +perGiB(v).toFixed(2)])),
        pageFaultsPerGiB: Object.fromEntries(Object.entries(r.faults).map(([k, v]) => [k, Math.round(perGiB(v))])),
      })),
      curlFloorCpuSPerGiB: +curlCpuPerGiB.toFixed(2),
      curlToFileCpuSPerGiB: +curlToFileCpuPerGiB.toFixed(2),
      downloaderXMirror: +(wireCpu('tls', 'peerB') / baseline).toFixed(2),
      uploaderXMirror: +(wireCpu('tls', 'peerA') / baseline).toFixed(2),
      wire: {
        plain: wireOf('plain'),
        tls: wireOf('tls'),
        downloaderTlsOverPlain: overPlain('peerB'),
        uploaderTlsOverPlain: overPlain('peerA'),
        // The seed path: pieces from the supernode's API, TLS-PSK against plain HTTP.
        seedPeerTlsOverPlain: +(seedRows.get('tls')!.cpu.peerA! / seedRows.get('plain')!.cpu.peerA!).toFixed(3),
      },
    };
    console.log(JSON.stringify(result));
    console.log(`\npeer CPU per GiB on loopback, ${sizeMiB} MiB image, no caps (baseline: the mirror path, same run); the VM's freed memory: ${result.vmMemory}\n`);
    console.log('| pull                                 | wall s | process: CPU s per GiB (x mirror) [of it system; page faults per GiB]          |');
    console.log('| ------------------------------------ | ------ | ------------------------------------------------------------------------------ |');
    console.log(`| ${'floor: curl <- registry (same blob)'.padEnd(36)} | ${'-'.padStart(6)} | ${`curl ${curlCpuPerGiB.toFixed(2)} (${(curlCpuPerGiB / baseline).toFixed(2)}x)`.padEnd(78)} |`);
    console.log(`| ${'floor: the same, to a new file'.padEnd(36)} | ${'-'.padStart(6)} | ${`curl ${curlToFileCpuPerGiB.toFixed(2)} (${(curlToFileCpuPerGiB / baseline).toFixed(2)}x)`.padEnd(78)} |`);
    for (const r of rows) {
      const cells = Object.entries(r.cpu)
        .map(([k, v]) => `${k} ${perGiB(v).toFixed(2)} (${(perGiB(v) / baseline).toFixed(2)}x) [${perGiB(r.sys[k]!).toFixed(2)}; ${(perGiB(r.faults[k]!) / 1000).toFixed(0)}k]`)
        .join(', ');
      console.log(`| ${r.pull.padEnd(36)} | ${r.seconds.toFixed(1).padStart(6)} | ${cells.padEnd(78)} |`);
    }
    const pct = (x: number) => `${x >= 1 ? '+' : ''}${((x - 1) * 100).toFixed(0)} %`;
    console.log(
      `\nwire encryption (TLS 1.3 PSK, AES-128-GCM) against plain TCP, CPU s per GiB (mean of 2 pulls each): ` +
        `downloading peer B ${wireCpu('plain', 'peerB').toFixed(2)} -> ${wireCpu('tls', 'peerB').toFixed(2)} (${pct(result.wire.downloaderTlsOverPlain)}), ` +
        `uploading side ${wireCpu('plain', 'peerA').toFixed(2)} -> ${wireCpu('tls', 'peerA').toFixed(2)} (${pct(result.wire.uploaderTlsOverPlain)}); ` +
        `seed path (supernode API, TLS against plain HTTP), peer A: ${pct(result.wire.seedPeerTlsOverPlain)}`,
    );
    console.log(`every peer B got at least ${(fromPeers / MiB).toFixed(0)} of ${(image.size / MiB).toFixed(0)} MiB from peers`);
    if (fromPeers < image.size * 0.9) throw new Error(`peer B got only ${fromPeers} of ${image.size} bytes from peer A: the p2p row does not measure the peer path`);
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
    await hold?.release();
  }
}

await main();
