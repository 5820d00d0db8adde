// The P2P cluster end to end: a real registry, `pollen supernode` and `pollen peer --supernode`
// processes, real clients (skopeo, containerd's ctr) pulling through the peers' mirrors.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLevelKv } from '../../src/db.ts';
import type { Digest } from '../../src/digest.ts';
import { Bitfield } from '../../src/p2p/bitfield.ts';
import type { PersistedPieces } from '../../peer/p2p/transfer-seams.ts';
import { DEFAULT_PIECE_BYTES } from '../../src/p2p/metainfo.ts';
import { WireConnection } from '../../src/p2p/wire-connection.ts';
import { infoHashOf } from '../../src/p2p/wire-extensions.ts';
import { dialWire } from '../../src/p2p/wire-tls.ts';
import { Containerd, skopeoPullViaMirror } from '../helpers/clients.ts';
import { CLUSTER_SECRET, committedSources, pushRandomImage, startP2pPeer, startSupernodeProcess, wirePort, type ImageFixture } from '../helpers/p2p-cluster.ts';
import type { PollenProcess } from '../helpers/pollen.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { freePort, waitFor } from '../helpers/tools.ts';

const MiB = 1 << 20;
let registry: TestRegistry;
let big: ImageFixture;
let small: ImageFixture;
const procs: PollenProcess[] = [];
const containerds: Containerd[] = [];
const scratch: string[] = [];

function track<T extends PollenProcess>(p: T): T {
  procs.push(p);
  return p;
}

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'pollen-p2p-pull-'));
  scratch.push(d);
  return d;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

async function skopeoPullChecked(peer: PollenProcess, image: ImageFixture): Promise<void> {
  const dest = await tempDir();
  await skopeoPullViaMirror(peer.host, image.ref, dest);
  for (const l of image.layers) expect(sha256(await readFile(join(dest, 'blobs', 'sha256', l.descriptor.digest.slice(7))))).toBe(l.descriptor.digest);
  await rm(dest, { recursive: true, force: true });
}

function logCount(p: PollenProcess, msg: string): number {
  return p.output().split(`"msg":"${msg}"`).length - 1;
}

beforeAll(async () => {
  registry = await TestRegistry.start();
  big = await pushRandomImage(registry, 'p2p/big', [100 * MiB, 64 * MiB, 40 * MiB]);
  small = await pushRandomImage(registry, 'p2p/small', [32 * MiB]);
}, 300_000);

afterAll(async () => {
  // Warnings and errors the daemons logged, for post-mortems.
  const lines = procs.flatMap((p, i) => p.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l) || /"msg":"(no P2P task from this supernode|P2P stalled; fetching the rest from the registry|blob committed|seed fetching from the registry|peer dropped: no heartbeat)"/.test(l)).map((l) => `[${i} ${p.url}] ${l}`));
  await writeFile(join(tmpdir(), 'pollen-p2p-cluster-warnings.log'), lines.join('\n'));
  for (const p of procs) await p.stop().catch(() => {});
  for (const c of containerds) await c.stop().catch(() => {});
  await registry?.stop();
  for (const d of scratch) await rm(d, { recursive: true, force: true });
}, 120_000);

describe('a P2P cluster of real processes', () => {
  let supernode: PollenProcess;
  let late: PollenProcess;

  it('8 peers pulling a 3-layer 204 MiB image at once with skopeo and ctr get identical blobs; the registry sends it about once; most bytes come from peers', async () => {
    supernode = track(await startSupernodeProcess(registry));
    const peers = await Promise.all(Array.from({ length: 8 }, () => startP2pPeer(registry, supernode.url).then(track)));
    const ctrs = await Promise.all([Containerd.start(), Containerd.start()]);
    containerds.push(...ctrs);
    const before = registry.blobBytesSent();
    await Promise.all(
      peers.map(async (peer, i) => {
        if (i < 6) return skopeoPullChecked(peer, big);
        const ctr = ctrs[i - 6]!;
        await ctr.pullViaMirror(peer.host, big.ref);
        for (const l of big.layers) expect(sha256(await ctr.contentGet(l.descriptor.digest))).toBe(l.descriptor.digest);
      }),
    );
    const sent = registry.blobBytesSent() - before;
    expect(sent).toBeLessThanOrEqual(1.1 * big.size);
    const sources = peers.map((p) => committedSources(p.output()));
    const fromPeers = sources.reduce((n, s) => n + s.peer, 0);
    const fromSeed = sources.reduce((n, s) => n + s.seed, 0);
    expect(fromPeers).toBeGreaterThan(fromSeed);
    expect(fromPeers + fromSeed).toBeGreaterThan(7 * big.size);
  }, 900_000);

  it('a peer that starts after the others finished gets every byte from peers: zero registry bytes', async () => {
    late = track(await startP2pPeer(registry, supernode.url));
    const before = registry.blobBytesSent();
    await skopeoPullChecked(late, big);
    expect(registry.blobBytesSent() - before).toBe(0);
    const from = committedSources(late.output());
    expect(from.seed + from.upstream).toBe(0);
    expect(from.peer).toBeGreaterThanOrEqual(big.layers.reduce((n, l) => n + l.blob.length, 0));
  }, 300_000);

  it('random bytes, oversized lengths, a wrong handshake or a missing secret on the wire port are dropped and the peer serves on', async () => {
    const port = wirePort(late.output());
    const digest = big.layers[0]!.descriptor.digest as Digest;
    const closes = async (payload: Buffer): Promise<boolean> => {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      s.write(payload);
      return new Promise((resolve) => {
        const t = setTimeout(() => resolve(false), 10_000);
        s.resume();
        s.once('close', () => {
          clearTimeout(t);
          resolve(true);
        });
      });
    };
    const reserved = Buffer.alloc(8);
    reserved[5] = 0x10;
    const handshake = Buffer.concat([Buffer.from('\x13BitTorrent protocol', 'latin1'), reserved, Buffer.from(infoHashOf(digest), 'hex'), randomBytes(20)]);
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(0x7fffffff);
    expect(await closes(randomBytes(8192))).toBe(true);
    expect(await closes(Buffer.concat([Buffer.from('\x13BitTorrent protocoX', 'latin1'), randomBytes(48)]))).toBe(true);
    expect(await closes(Buffer.concat([handshake, huge, randomBytes(1024)]))).toBe(true);
    const noSecret = WireConnection.outgoing(dialWire(`127.0.0.1:${port}`, ''), { peerId: randomBytes(20) }, digest);
    await expect(noSecret.ready).rejects.toThrow();
    const wrongSecret = WireConnection.outgoing(dialWire(`127.0.0.1:${port}`, 'guess'), { peerId: randomBytes(20) }, digest);
    await expect(wrongSecret.ready).rejects.toThrow();

    expect(late.exited).toBe(false);
    const member = WireConnection.outgoing(dialWire(`127.0.0.1:${port}`, CLUSTER_SECRET), { peerId: randomBytes(20) }, digest);
    await member.ready;
    member.interested(); // BEP 3: a slot goes to a child that asks for one
    if (member.peerChoking) await new Promise<void>((r) => member.once('unchoke', () => r()));
    const block = await member.request(0, 0, 16 * 1024);
    expect(block.equals(big.layers[0]!.blob.subarray(0, 16 * 1024))).toBe(true);
    member.destroy();
  }, 120_000);
});

describe('P2P faults with real processes', () => {
  it('a peer serving corrupted pieces is banned and every pull is still correct', async () => {
    const sn = track(await startSupernodeProcess(registry));
    const bad = track(await startP2pPeer(registry, sn.url, ['--fault-corrupt-uploads']));
    await skopeoPullChecked(bad, small);
    const others = await Promise.all([startP2pPeer(registry, sn.url).then(track), startP2pPeer(registry, sn.url).then(track)]);
    await Promise.all(others.map((p) => skopeoPullChecked(p, small)));
    expect(others.reduce((n, p) => n + logCount(p, 'bad piece from a parent; banning it'), 0)).toBeGreaterThan(0);
    expect(bad.exited).toBe(false);
  }, 300_000);

  it('SIGKILL of a parent mid-transfer: the others finish', async () => {
    const sn = track(await startSupernodeProcess(registry));
    const parent = track(await startP2pPeer(registry, sn.url, ['--upload-rate', String(4 * MiB)]));
    await skopeoPullChecked(parent, small);
    const others = await Promise.all([startP2pPeer(registry, sn.url).then(track), startP2pPeer(registry, sn.url).then(track)]);
    const pulls = others.map((p) => skopeoPullChecked(p, small));
    await waitFor(async () => others.some((p) => logCount(p, 'piece verified') > 0), 'a first piece from the parent', 60_000);
    parent.kill('SIGKILL');
    await Promise.all(pulls);
  }, 300_000);

  it('stopping the supernode mid-pull: pulls complete (from the parent they know, else the registry); after a restart new pulls use P2P again', async () => {
    const data = await tempDir();
    const port = await freePort();
    let sn = await startSupernodeProcess(registry, [], { dataDir: data, port });
    const parent = track(await startP2pPeer(registry, sn.url, ['--upload-rate', String(4 * MiB)]));
    await skopeoPullChecked(parent, small);
    const others = await Promise.all([startP2pPeer(registry, sn.url).then(track), startP2pPeer(registry, sn.url).then(track)]);
    const pulls = others.map((p) => skopeoPullChecked(p, small));
    // A piece of the layer (the config, fetched as soon as the manifest is served, is done first).
    const layer = small.layers[0]!.descriptor.digest;
    await waitFor(async () => others.some((p) => new RegExp(`"digest":"${layer}","piece":\\d+[^\\n]*"msg":"piece verified"`).test(p.output())), 'a first piece of the layer', 60_000);
    await sn.stop({ keepData: true });
    await Promise.all(pulls);
    // The client may be done before the peer logs the commit (its config came from the store).
    const committed = (p: PollenProcess) => new RegExp(`"digest":"${layer}"[^\\n]*"msg":"blob committed"`).test(p.output());
    await waitFor(async () => others.every(committed), 'the layer committed on both peers', 30_000);
    // Every byte of the layer came from somewhere: the parent they knew, the seed before it stopped,
    // the registry when nothing else was left (the seed-alone case below times that fallback).
    for (const p of others) {
      const from = committedSources(p.output(), layer);
      expect(from.peer + from.seed + from.upstream).toBe(small.layers[0]!.blob.length);
    }

    sn = track(await startSupernodeProcess(registry, [], { dataDir: data, port }));
    await waitFor(async () => [parent, ...others].every((p) => p.output().split('"msg":"registered with the supernode"').length > 2), 'peers registered again', 30_000);
    const next = track(await startP2pPeer(registry, sn.url));
    const before = registry.blobBytesSent();
    await skopeoPullChecked(next, small);
    await waitFor(async () => committed(next), 'the layer committed', 30_000);
    expect(registry.blobBytesSent() - before).toBe(0);
    expect(committedSources(next.output()).peer).toBeGreaterThan(0);
  }, 300_000);

  it('a pull fed by the seed alone goes to the registry within seconds when the supernode stops, not after supernodeDeadMs', async () => {
    // The seed fetches at 4 MiB/s: the 32 MiB layer takes ~8 s through it.
    const sn = await startSupernodeProcess(registry, ['--seed-registry-rate', '4MiB']);
    const first = track(await startP2pPeer(registry, sn.url));
    const pull = skopeoPullChecked(first, small);
    const layer = small.layers[0]!.descriptor.digest;
    await waitFor(async () => new RegExp(`"digest":"${layer}","piece":\\d+[^\\n]*"msg":"piece verified"`).test(first.output()), 'a first piece of the layer', 60_000);
    const before = registry.blobBytesSent();
    const stopped = Date.now();
    await sn.stop();
    await pull;
    // Its host refuses connections now: the transfer falls back after supernodeRefusedMs (3 s)
    // without bytes, where a slow supernode would be given supernodeDeadMs (30 s).
    expect(Date.now() - stopped).toBeLessThan(15_000);
    expect(registry.blobBytesSent() - before).toBeGreaterThan(0);
    expect(first.output()).toContain('supernode down');
  }, 120_000);

  it('SIGKILL a peer mid-download and restart it: it resumes from its record, fetching only what the record did not hold', async () => {
    const sn = track(await startSupernodeProcess(registry));
    const parent = track(await startP2pPeer(registry, sn.url, ['--upload-rate', String(4 * MiB)]));
    await skopeoPullChecked(parent, small);
    const dir = await tempDir();
    const first = await startP2pPeer(registry, sn.url, [], { dataDir: dir });
    const pull = skopeoPullChecked(first, small).catch((e: Error) => e);
    await waitFor(async () => logCount(first, 'piece verified') >= 3, 'three verified pieces', 60_000);
    first.kill('SIGKILL');
    expect(await pull).toBeInstanceOf(Error);
    // The pieces it verified before it died, by its log, and those its resume record holds (written
    // at most once a second: a crash loses the pieces verified since the last write, never more).
    const layer = small.layers[0]!;
    const bytesOf = (pieces: Iterable<number>): number => [...pieces].reduce((n, i) => n + Math.max(0, Math.min(DEFAULT_PIECE_BYTES, layer.blob.length - i * DEFAULT_PIECE_BYTES)), 0);
    const verified = new Set<number>();
    for (const m of first.output().matchAll(new RegExp(`"digest":"${layer.descriptor.digest}","piece":(\\d+)[^\\n]*"msg":"piece verified"`, 'g'))) verified.add(Number(m[1]));
    await first.stop({ keepData: true });
    const db = await openLevelKv(join(dir, 'meta'));
    const record = (await db.sub<PersistedPieces>('p2p').get(layer.descriptor.digest)) as PersistedPieces;
    await db.close();
    const pieceCount = Math.ceil(layer.blob.length / DEFAULT_PIECE_BYTES);
    const saved = Bitfield.fromBase64(pieceCount, record.pieces);
    const recorded = Array.from({ length: pieceCount }, (_, i) => i).filter((i) => saved.has(i));
    expect(recorded.length).toBeGreaterThan(0);
    expect(recorded.every((i) => verified.has(i))).toBe(true);
    const again = track(await startP2pPeer(registry, sn.url, [], { dataDir: dir }));
    await skopeoPullChecked(again, small);
    // The layer's record, once (a kill right after the one-piece config blob was verified leaves its
    // record too, whole: that blob resumes as well, and is not what this counts).
    expect(again.output().split('\n').filter((l) => l.includes('resuming a partial download') && l.includes(layer.descriptor.digest))).toHaveLength(1);
    const from = committedSources(again.output(), layer.descriptor.digest);
    expect(from.peer + from.seed + from.upstream).toBe(layer.blob.length - bytesOf(recorded));
  }, 300_000);
});
