// What one sync costs the supernode, measured on the real route: a `pollen supernode` process with
// its cluster API on TLS (keyed by a secret, as deployed), many registered peers each holding tasks
// for every layer of one image, and each peer sending the batched syncs a transfer sends (one
// request carrying one sync per task, as peer/p2p/supernode-client.ts batches them), each reporting
// one new piece of every task per round until it holds them all (at the defaults, within the
// unmeasured warm-up round: the measured syncs are a swarm's steady state, every piece held).
// The supernode's CPU (user + system, from /proc) per request and per task's sync, against a
// baseline measured in the same run on the same connections: heartbeats, the cheapest authenticated
// call (the same TLS, HTTP and token check, no scheduling; the per-peer request budget is off for
// the bench's peers). `bench sim` times the scheduler alone (its "cpu us/scan"); this is what a
// sync costs with the HTTP around it, the figure that says how many syncs one supernode core answers.
// The syncs are measured twice, by two groups of as many peers each: one sending its batches as
// HTTP requests, one on sync channels (src/p2p/sync-channel-frames.ts), what peers send now.
// Usage: npm run bench:sync [-- --peers 96 --rounds 100 --layers 4 --layer-mib 16]
import { parseArgs } from 'node:util';
import { generateSecret } from '../src/cluster-tls.ts';
import type { Digest } from '../src/digest.ts';
import type { MetainfoBody } from '../src/p2p/supernode-api.ts';
import { SupernodeClient } from '../peer/p2p/supernode-client.ts';
import { UPSTREAM_HOST } from '../test/helpers/clients.ts';
import { pushRandomImage, startSupernodeProcess } from '../test/helpers/p2p-cluster.ts';
import type { PollenProcess } from '../test/helpers/pollen.ts';
import { TestRegistry } from '../test/helpers/registry.ts';
import { cpuDetail } from './testbed/process-stats.ts';
import { timed } from './timed.ts';

const MiB = 1 << 20;

interface Phase {
  readonly requests: number;
  readonly taskSyncs: number;
  readonly wallS: number;
  readonly cpuS: number;
  readonly sysS: number;
  /** CPU of this process (the peers' clients) over the phase. */
  readonly clientCpuS: number;
}

function cpuOf(proc: PollenProcess): { cpu: number; sys: number } {
  const d = cpuDetail(proc.pid ?? 0);
  if (!d) throw new Error(`supernode process ${proc.pid} is gone`);
  return { cpu: d.userS + d.systemS, sys: d.systemS };
}

async function measure(supernode: PollenProcess, run: () => Promise<{ requests: number; taskSyncs: number }>): Promise<Phase> {
  const before = cpuOf(supernode);
  const client = process.cpuUsage();
  let counts = { requests: 0, taskSyncs: 0 };
  const ms = await timed(async () => {
    counts = await run();
  });
  const after = cpuOf(supernode);
  const used = process.cpuUsage(client);
  return { ...counts, wallS: ms / 1000, cpuS: after.cpu - before.cpu, sysS: after.sys - before.sys, clientCpuS: (used.user + used.system) / 1e6 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      peers: { type: 'string', default: '96' },
      rounds: { type: 'string', default: '100' },
      layers: { type: 'string', default: '4' },
      'layer-mib': { type: 'string', default: '16' },
    },
  });
  const peers = Number(values.peers);
  const rounds = Number(values.rounds);
  const layers = Number(values.layers);
  const layerMiB = Number(values['layer-mib']);
  if (![peers, rounds, layers, layerMiB].every((n) => Number.isInteger(n) && n > 0)) throw new Error('--peers, --rounds, --layers and --layer-mib take positive integers');

  const registry = await TestRegistry.start();
  const secret = generateSecret();
  let supernode: PollenProcess | undefined;
  const clients: SupernodeClient[] = [];
  try {
    const image = await pushRandomImage(registry, 'bench/sync', Array.from({ length: layers }, () => layerMiB * MiB));
    const digests = image.layers.map((l) => l.descriptor.digest as Digest);
    // No per-peer request budget: the bench's peers call as fast as the supernode answers.
    supernode = await startSupernodeProcess(registry, ['--secret', secret, '--log-level', 'info', '--peer-request-rate', '0']);
    const url = supernode.url;

    // Every peer registers and opens a task per layer (the seed fetches each blob once).
    // Peers [0, peers) send their syncs on channels, [peers, 2 x peers) as HTTP requests.
    const ids = Array.from({ length: 2 * peers }, (_, k) => `bench-peer-${String(k).padStart(4, '0')}`);
    const metas = new Map<Digest, MetainfoBody>();
    for (const [k, peerId] of ids.entries()) {
      const client = new SupernodeClient({}, { urls: [url], secret, timeoutMs: 30_000, syncChannel: k < peers });
      clients.push(client);
      await client.register(url, { peerId, wireAddr: `127.0.0.1:${20_000 + k}`, uploadSlots: 10, holdings: [] });
      for (const digest of digests) metas.set(digest, await client.createTask(url, { digest, upstream: { registry: UPSTREAM_HOST, name: 'bench/sync' } }));
    }
    const pieceCount = (d: Digest) => metas.get(d)!.pieceCount;

    // Heartbeats: every peer at once, one after another on each peer's connection.
    const heartbeatRound = () =>
      measure(supernode!, async () => {
        await Promise.all(ids.slice(0, peers).map(async (peerId, k) => {
          for (let r = 0; r < rounds; r++) if (!(await clients[k]!.heartbeat(url, peerId))) throw new Error(`supernode forgot ${peerId}`);
        }));
        return { requests: peers * rounds, taskSyncs: 0 };
      });

    // Syncs: each round a peer reports one new piece of every task (a different one per peer, so
    // holders spread as in a fan-out) and asks for parents and seed pieces; its task syncs of a
    // round go out in one request.
    let seedGrants = 0;
    let parents = 0;
    const round0 = [0, 0];
    const syncRound = (group: 0 | 1) =>
      measure(supernode!, async () => {
        const from = round0[group]!;
        round0[group] = from + rounds;
        await Promise.all(ids.slice(group * peers, (group + 1) * peers).map(async (_peerId, j) => {
          const k = group * peers + j;
          const client = clients[k]!;
          for (let r = from; r < from + rounds; r++) {
            const answers = await Promise.all(digests.map((digest) => {
              const n = pieceCount(digest);
              return client.sync(url, digest, { have: r < n ? [(k + r) % n] : [], wantSeed: 4, badParents: [], knownHashes: n });
            }));
            for (const a of answers) {
              seedGrants += a.seedGrants.length;
              parents += a.parents.length;
            }
          }
        }));
        return { requests: peers * rounds, taskSyncs: peers * rounds * digests.length };
      });

    // A round of each first, unmeasured (V8 compiles the hot paths), then heartbeats, syncs and
    // heartbeats again: the baseline brackets the syncs, so a change in the machine's load shows.
    await heartbeatRound();
    await syncRound(0);
    await syncRound(1);
    const hb1 = await heartbeatRound();
    const httpSyncs = await syncRound(1);
    const syncs = await syncRound(0);
    const hb2 = await heartbeatRound();
    const heartbeats: Phase = { requests: hb1.requests + hb2.requests, taskSyncs: 0, wallS: hb1.wallS + hb2.wallS, cpuS: hb1.cpuS + hb2.cpuS, sysS: hb1.sysS + hb2.sysS, clientCpuS: hb1.clientCpuS + hb2.clientCpuS };
    if (parents === 0) throw new Error('no sync was answered with a parent: the scheduler did not run');
    const onChannels = clients.map((c) => c.syncBatches.channel);
    if (onChannels.slice(0, peers).some((n) => n === 0) || onChannels.slice(peers).some((n) => n > 0)) throw new Error(`syncs did not go as asked (answered on channels, per peer: ${onChannels.join(' ')})`);

    const us = (p: Phase, n: number) => (n > 0 ? (p.cpuS / n) * 1e6 : 0);
    const result = {
      bench: 'sync-route',
      peers,
      rounds,
      tasksPerPeer: digests.length,
      piecesPerTask: pieceCount(digests[0]!),
      heartbeat: {
        requests: heartbeats.requests,
        wallS: +heartbeats.wallS.toFixed(2),
        cpuS: +heartbeats.cpuS.toFixed(2),
        cpuUsPerRequest: Math.round(us(heartbeats, heartbeats.requests)),
        cpuUsPerRequestBeforeAfter: [Math.round(us(hb1, hb1.requests)), Math.round(us(hb2, hb2.requests))],
      },
      sync: {
        requests: syncs.requests,
        taskSyncs: syncs.taskSyncs,
        wallS: +syncs.wallS.toFixed(2),
        cpuS: +syncs.cpuS.toFixed(2),
        sysS: +syncs.sysS.toFixed(2),
        cpuUsPerRequest: Math.round(us(syncs, syncs.requests)),
        cpuUsPerTaskSync: Math.round(us(syncs, syncs.taskSyncs)),
        clientCpuUsPerRequest: Math.round((syncs.clientCpuS / syncs.requests) * 1e6),
        parentsOffered: parents,
        seedGrants,
      },
      httpSync: {
        requests: httpSyncs.requests,
        wallS: +httpSyncs.wallS.toFixed(2),
        cpuS: +httpSyncs.cpuS.toFixed(2),
        cpuUsPerRequest: Math.round(us(httpSyncs, httpSyncs.requests)),
        cpuUsPerTaskSync: Math.round(us(httpSyncs, httpSyncs.taskSyncs)),
        clientCpuUsPerRequest: Math.round((httpSyncs.clientCpuS / httpSyncs.requests) * 1e6),
      },
      channelOverHttp: +(us(syncs, syncs.requests) / us(httpSyncs, httpSyncs.requests)).toFixed(2),
      syncOverHeartbeat: +(us(syncs, syncs.requests) / us(heartbeats, heartbeats.requests)).toFixed(2),
      taskSyncsPerCoreS: Math.round(syncs.taskSyncs / syncs.cpuS),
    };
    console.log(JSON.stringify(result));
    console.log(`\nsupernode CPU per call on its TLS API (${peers} peers x ${digests.length} tasks of ${result.piecesPerTask} pieces, ${rounds} rounds; baseline: heartbeats, same run)\n`);
    console.log('| call                                  | requests | wall s | supernode CPU s | CPU us / request | CPU us / task sync | x heartbeat |');
    console.log('| ------------------------------------- | -------- | ------ | --------------- | ---------------- | ------------------ | ----------- |');
    console.log(`| ${'heartbeat'.padEnd(37)} | ${String(heartbeats.requests).padStart(8)} | ${heartbeats.wallS.toFixed(1).padStart(6)} | ${heartbeats.cpuS.toFixed(2).padStart(15)} | ${String(result.heartbeat.cpuUsPerRequest).padStart(16)} | ${'-'.padStart(18)} | ${'1.00'.padStart(11)} |`);
    const row = (name: string, p: Phase, perRequest: number, perTaskSync: number): void =>
      console.log(`| ${name.padEnd(37)} | ${String(p.requests).padStart(8)} | ${p.wallS.toFixed(1).padStart(6)} | ${p.cpuS.toFixed(2).padStart(15)} | ${String(perRequest).padStart(16)} | ${String(perTaskSync).padStart(18)} | ${(perRequest / result.heartbeat.cpuUsPerRequest).toFixed(2).padStart(11)} |`);
    row(`sync batch, HTTP (${digests.length} task syncs each)`, httpSyncs, result.httpSync.cpuUsPerRequest, result.httpSync.cpuUsPerTaskSync);
    row(`sync batch, channel (${digests.length} each)`, syncs, result.sync.cpuUsPerRequest, result.sync.cpuUsPerTaskSync);
    console.log(`\nthe sync channel costs the supernode ${result.channelOverHttp.toFixed(2)} x what HTTP requests cost a batch; the peers' clients ${result.sync.clientCpuUsPerRequest} us a batch on channels against ${result.httpSync.clientCpuUsPerRequest} us as HTTP requests`);
    console.log(`\none supernode core answers ~${result.taskSyncsPerCoreS} task syncs a second on this machine (parents offered ${parents}, seed grants ${seedGrants})`);
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    await supernode?.stop().catch(() => {});
    await registry.stop();
  }
}

await main();
