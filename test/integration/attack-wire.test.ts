// Attacks on a peer's wire, against the real P2P parts (supernode, agents, wire listener, dialler)
// over real loopback sockets, in a cluster with a secret (so the wire is TLS with the wire key):
// a stranger gets at most a TLS alert and learns nothing about what the peer holds; a stranger
// holding many idle sockets does not keep a member out; a peer with another secret fetches nothing;
// a member that breaks the block rules is closed and its address banned, and only its address; a
// member that sends forged piece proofs with bad bytes gets none of them stored; a member posing
// as a parent with a handshake that is not BitTorrent's never gets the dialler ready.
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { generateSecret, pskClientOptions } from '../../src/cluster-tls.ts';
import { sha256Digest, type Digest } from '../../src/digest.ts';
import { AddressBans } from '../../src/p2p/wire-bans.ts';
import { Bitfield } from '../../src/p2p/bitfield.ts';
import { BLOCK_BYTES, DEFAULT_PIECE_BYTES, pieceCountFor, pieceRange, pieceSizeFor, SMALL_PIECE_BYTES } from '../../src/p2p/metainfo.ts';
import { PieceSigner } from '../../src/p2p/piece-proof.ts';
import { WireListener } from '../../src/p2p/wire-listener.ts';
import { SupernodeClient } from '../../peer/p2p/supernode-client.ts';
import { blockMessage, MAX_INCOMING_REQUESTS, MAX_REQUESTS_WHILE_CHOKED, MSG_REQUEST } from '../../src/p2p/wire-blocks.ts';
import { WireConnection } from '../../src/p2p/wire-connection.ts';
import { infoHashOf } from '../../src/p2p/wire-extensions.ts';
import { WireDialer } from '../../src/p2p/wire-dialer.ts';
import { secureIncoming, whenSecure } from '../../src/p2p/wire-tls.ts';
import { splitHostPort } from '../../src/config.ts';
import type { BuiltLayer } from '../helpers/images.ts';
import { startPeer, startSupernode, watchDigests, type TestPeer } from '../helpers/p2p-swarm.ts';
import { PIECE_KEY_FILE } from '../../supernode/supernode.ts';
import { TestRegistry } from '../helpers/registry.ts';

const SECRET = generateSecret();

/** The BitTorrent handshake and extended handshake a plain (pre-TLS) Pollen dialler would send for `digest`. */
function plainHello(digest: Digest): Buffer {
  const reserved = Buffer.alloc(8);
  reserved[5] = 0x10;
  const body = Buffer.from(`d1:md13:pollen_accepti1ee13:pollen_digest${digest.length}:${digest}e`, 'latin1');
  const ext = Buffer.alloc(6);
  ext.writeUInt32BE(2 + body.length);
  ext[4] = 20;
  ext[5] = 0;
  return Buffer.concat([Buffer.from('\x13BitTorrent protocol', 'latin1'), reserved, Buffer.from(infoHashOf(digest), 'hex'), randomBytes(20), ext, body]);
}

/** Sends `bytes` on a plain socket; everything received until the peer closes it (rejects after `ms`). */
function exchange(port: number, bytes: Buffer, ms = 8_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(port, '127.0.0.1');
    const got: Buffer[] = [];
    const t = setTimeout(() => (s.destroy(), reject(new Error('the peer kept the connection open'))), ms);
    s.on('error', () => {});
    s.on('data', (d: Buffer) => got.push(d));
    s.once('connect', () => s.write(bytes));
    s.once('close', () => (clearTimeout(t), resolve(Buffer.concat(got))));
  });
}

/** Nothing, or TLS alert records only (content type 21, two bytes each). */
function atMostAlerts(b: Buffer): boolean {
  for (let i = 0; i + 5 <= b.length; i += 7) if (b[i] !== 0x15 || b.readUInt16BE(i + 3) !== 2) return false;
  return b.length % 7 === 0;
}

/** A TCP relay to `port` that records what the peer sends back (to see the bytes under a TLS client). */
async function recordingRelay(port: number): Promise<{ port: number; fromPeer: Buffer[]; closed: Promise<void>; server: Server }> {
  const fromPeer: Buffer[] = [];
  let done!: () => void;
  const closed = new Promise<void>((r) => (done = r));
  const server = createServer((client) => {
    const upstream = tcpConnect(port, '127.0.0.1');
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d: Buffer) => (fromPeer.push(d), client.write(d)));
    upstream.once('close', () => (client.destroy(), done()));
    client.once('close', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, fromPeer, closed, server };
}

describe('attacks on the peer wire', () => {
  let registry: TestRegistry;
  let layer: BuiltLayer;
  let layoutDir: string;
  let holder: TestPeer;
  let wirePort: number;
  let supernodeUrl: string;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    registry = await TestRegistry.start();
    ({ layers: [layer], layoutDir } = await registry.pushRandomImage('test/attack:v1', [{ seed: 'attack-wire', bytes: 6 << 20 }]));
    const { node } = await startSupernode({ upstream: registry.url, secret: SECRET });
    cleanups.push(() => node.close());
    supernodeUrl = node.url;
    holder = await startPeer([node.url], { secret: SECRET });
    cleanups.push(() => holder.close());
    const digest = layer.descriptor.digest as Digest;
    expect(await holder.pull(registry.url, 'test/attack', digest)).toBe(digest);
    wirePort = splitHostPort(holder.agent.wireAddr).port;
  }, 120_000);

  /**
   * A forger: a member's wire listener claiming every piece of `digest`, sending each piece's proof
   * (signed with a key of its own, over the hash of the bytes it sends) and then bytes of its own;
   * registered with the supernode as holding the whole blob.
   */
  /** A 4 MiB layer pushed as image `repo:v1` (its layout removed after the suite). */
  async function pushLayer(repo: string, seed: string): Promise<BuiltLayer> {
    const { layers, layoutDir: dir } = await registry.pushRandomImage(`${repo}:v1`, [{ seed, bytes: 4 << 20 }]);
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return layers[0]!;
  }

  /** A layer the seed holds whole and verified (an honest peer pulled it, then left): every task created for it carries the hash of its piece-hash list. */
  async function vouchedLayer(repo: string, seed: string): Promise<{ digest: Digest; size: number }> {
    const pushed = await pushLayer(repo, seed);
    const digest = pushed.descriptor.digest as Digest;
    const first = await startPeer([supernodeUrl], { secret: SECRET });
    expect(await first.pull(registry.url, repo, digest)).toBe(digest);
    await first.close();
    return { digest, size: pushed.blob.length };
  }

  /** The bytes `peer`'s transfers threw away, by cause, as they are counted. */
  function wastedBytes(peer: TestPeer): Record<string, number> {
    const wasted: Record<string, number> = {};
    peer.agent.onTransferEvent = (e) => {
      if (e.kind === 'duplicate') wasted[e.cause] = (wasted[e.cause] ?? 0) + e.bytes;
    };
    return wasted;
  }

  async function startForger(digest: Digest, size: number, pieceSize: number, options: { list?: boolean } = {}): Promise<{ proofs: number; blocks: number; lists: number; asked: number }> {
    const pieceCount = pieceCountFor(size, pieceSize);
    const forger = PieceSigner.generate();
    const fake = (index: number): Buffer => Buffer.alloc(pieceRange(size, pieceSize, index).length, index + 1);
    const counts = { proofs: 0, blocks: 0, lists: 0, asked: 0 };
    const listener = new WireListener({ clock: systemClock, bans: new AddressBans({ clock: systemClock }), accept: (d) => d === digest }, { listen: '127.0.0.1:0', peerId: randomBytes(20), secret: SECRET, maxConnections: 8 });
    const proved = new Set<string>();
    listener.on('ready', (conn) => {
      conn.sendBitfield(Bitfield.full(pieceCount).bytes);
      if (conn.hashList.wants) counts.asked++;
      // `list`: the hashes of its own bytes, as the list a child asked for.
      if (options.list && conn.hashList.wants) {
        conn.hashList.send(Buffer.concat(Array.from({ length: pieceCount }, (_, i) => createHash('sha256').update(fake(i)).digest())));
        counts.lists++;
      }
      conn.unchoke();
      conn.on('request', (index, offset, length, respond) => {
        const key = `${conn.remoteAddress}/${index}`;
        if (!proved.has(key)) {
          proved.add(key);
          const hash = createHash('sha256').update(fake(index)).digest('hex');
          conn.sendProof({ index, hash, signature: Buffer.from(forger.sign(digest, index, hash), 'base64') });
          counts.proofs++;
        }
        counts.blocks++;
        respond(null, Buffer.from(fake(index).subarray(offset, offset + length)));
      });
    });
    await listener.start(() => {});
    cleanups.push(() => listener.close());
    const client = new SupernodeClient({}, { urls: [supernodeUrl], secret: SECRET, timeoutMs: 5_000 });
    cleanups.push(() => client.close());
    await client.register(supernodeUrl, { peerId: `forger-${digest.slice(7, 15)}`, wireAddr: `127.0.0.1:${listener.port}`, uploadSlots: 4, holdings: [{ digest, pieces: Bitfield.full(pieceCount).toBase64() }] });
    return counts;
  }

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await registry?.stop();
    await rm(layoutDir, { recursive: true, force: true });
  });

  it('a stranger speaking plain BitTorrent gets at most a TLS alert, the same whether the peer holds the digest or not', async () => {
    const held = await exchange(wirePort, plainHello(layer.descriptor.digest as Digest));
    const notHeld = await exchange(wirePort, plainHello(sha256Digest('not held anywhere')));
    expect(atMostAlerts(held)).toBe(true);
    expect(atMostAlerts(notHeld)).toBe(true);
    expect(held).toEqual(notHeld);
    const noise = await exchange(wirePort, randomBytes(4096));
    expect(atMostAlerts(noise)).toBe(true);
  });

  it('a TLS client without the key, or with another key, gets a handshake failure alert and nothing else', async () => {
    for (const attempt of ['no key', 'other key'] as const) {
      const relay = await recordingRelay(wirePort);
      const client =
        attempt === 'no key'
          ? tlsConnect({ host: '127.0.0.1', port: relay.port, rejectUnauthorized: false, minVersion: 'TLSv1.2' })
          : new WireDialer({ bans: new AddressBans({ clock: systemClock }) }, { peerId: randomBytes(20), secret: generateSecret() }).dial(`127.0.0.1:${relay.port}`, layer.descriptor.digest as Digest)!;
      const failed = new Promise<string>((resolve) => {
        if ('ready' in client) client.ready.then(() => resolve('ready'), (e: Error) => resolve(e.message));
        else client.on('error', (e) => resolve(e.message)).on('secureConnect', () => resolve('secure'));
      });
      expect(await failed).not.toMatch(/^(ready|secure)$/);
      await relay.closed;
      const fromPeer = Buffer.concat(relay.fromPeer);
      expect(fromPeer.length).toBeGreaterThan(0);
      expect(atMostAlerts(fromPeer)).toBe(true);
      relay.server.close();
    }
  });

  it('a peer with another secret cannot fetch a piece; a member can', async () => {
    const digest = layer.descriptor.digest as Digest;
    const bans = new AddressBans({ clock: systemClock });
    const outsider = new WireDialer({ bans }, { peerId: randomBytes(20), secret: generateSecret() }).dial(holder.agent.wireAddr, digest)!;
    await expect(outsider.ready).rejects.toThrow(/closed before ready/);
    expect(outsider.peerHas(0)).toBe(false);
    await expect(outsider.request(0, 0, 16 * 1024)).rejects.toThrow();

    const member = new WireDialer({ bans }, { peerId: randomBytes(20), secret: SECRET }).dial(holder.agent.wireAddr, digest)!;
    await member.ready;
    member.interested(); // BEP 3: a slot goes to a child that asks for one
    if (member.peerChoking) await new Promise<void>((r) => member.once('unchoke', () => r()));
    const block = await member.request(0, 0, 16 * 1024);
    expect(sha256Digest(block)).toBe(sha256Digest(layer.blob.subarray(0, 16 * 1024)));
    member.destroy();
  });

  /** A member's wire connection to the holder from `localAddress` (a loopback address of its own, so a ban there bans no one else). */
  function memberFrom(localAddress: string): { socket: TLSSocket; conn: WireConnection } {
    const tcp = tcpConnect({ host: '127.0.0.1', port: wirePort, localAddress });
    const socket = tlsConnect({ ...pskClientOptions(SECRET, 'wire'), socket: tcp });
    socket.on('error', () => {});
    const conn = WireConnection.outgoing(socket, { peerId: randomBytes(20), bans: new AddressBans({ clock: systemClock }) }, layer.descriptor.digest as Digest);
    return { socket, conn };
  }

  it('a member that breaks the block rules (or floods requests while choked) is closed and banned by address; members elsewhere still fetch', async () => {
    const block = 16 * 1024;
    const tooMany = Buffer.concat(Array.from({ length: MAX_INCOMING_REQUESTS + 1 }, (_, k) => blockMessage(MSG_REQUEST, Math.floor(k / 32), (k % 32) * block, block)));
    const malformed = Buffer.concat([Buffer.from([0, 0, 0, 14, MSG_REQUEST]), Buffer.alloc(13)]);
    const breaches: Array<[string, Buffer]> = [
      ['a request larger than a block', blockMessage(MSG_REQUEST, 0, 0, BLOCK_BYTES + 1)],
      [`${MAX_INCOMING_REQUESTS + 1} requests outstanding`, tooMany],
      ['a request of the wrong length', malformed],
      // Parsed by bittorrent-protocol, not by Pollen's framing: its error is still the member's
      // (a protocol violation), not one of our own listeners' (WireConnection.emit, no ban).
      ['a have of the wrong length', Buffer.from([0, 0, 0, 2, 4, 0])],
    ];
    for (const [i, [what, bytes]] of breaches.entries()) {
      const address = `127.0.0.${41 + i}`;
      const { socket, conn } = memberFrom(address);
      await conn.ready;
      conn.interested(); // BEP 3: a slot goes to a child that asks for one
      if (conn.peerChoking) await new Promise<void>((r) => conn.once('unchoke', () => r()));
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      socket.write(bytes);
      await expect(Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r(`still open after ${what}`), 5_000))])).resolves.toBe('closed');
      // The same address is refused from now on, even with the key and a fresh connection.
      const again = memberFrom(address);
      await expect(again.conn.ready, what).rejects.toThrow();
      again.socket.destroy();
    }
    // A member that never asks for a slot and floods requests while choked: each is rejected
    // (pollen_reject) up to the bound, then it is closed and banned.
    {
      const address = `127.0.0.${41 + breaches.length}`;
      const { socket, conn } = memberFrom(address);
      await conn.ready;
      expect(conn.speaksRejects).toBe(true);
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      socket.write(Buffer.concat(Array.from({ length: MAX_REQUESTS_WHILE_CHOKED + 1 }, (_, k) => blockMessage(MSG_REQUEST, Math.floor(k / 32), (k % 32) * block, block))));
      await expect(Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open after a flood while choked'), 5_000))])).resolves.toBe('closed');
      const again = memberFrom(address);
      await expect(again.conn.ready).rejects.toThrow();
      again.socket.destroy();
    }
    const { socket, conn } = memberFrom('127.0.0.1');
    await conn.ready;
    conn.interested(); // BEP 3: a slot goes to a child that asks for one
    if (conn.peerChoking) await new Promise<void>((r) => conn.once('unchoke', () => r()));
    const got = await conn.request(0, 0, block);
    expect(sha256Digest(got)).toBe(sha256Digest(layer.blob.subarray(0, block)));
    socket.destroy();
  }, 60_000);

  it('a member posing as a parent whose BEP 3 handshake is not BitTorrent\'s gets nothing from the handshake on: the dialler never gets ready on the accept and unchoke written behind it, and bans the address', async () => {
    const digest = layer.descriptor.digest as Digest;
    const bad = Buffer.concat([Buffer.from('\x13BitTorrent protocoX', 'latin1'), Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0]), Buffer.from(infoHashOf(digest), 'hex'), randomBytes(20)]);
    const withLength = (message: Buffer): Buffer => {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(message.length);
      return Buffer.concat([head, message]);
    };
    const ext = (id: number, body: Buffer): Buffer => withLength(Buffer.concat([Buffer.from([20, id]), body]));
    // The dialler's extended handshake names pollen_accept 1 (usePollenExtensions' order).
    const answer = Buffer.concat([bad, ext(0, Buffer.from('d1:md13:pollen_accepti1eee', 'latin1')), ext(1, Buffer.from(digest, 'latin1')), withLength(Buffer.from([5, 0xff])), withLength(Buffer.from([1]))]);
    const server = createServer((tcp) => {
      tcp.on('error', () => {});
      const socket = secureIncoming(tcp, SECRET);
      socket.on('error', () => {});
      whenSecure(socket, () => socket.once('data', () => socket.write(answer)));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const bans = new AddressBans({ clock: systemClock });
    const conn = new WireDialer({ bans }, { peerId: randomBytes(20), secret: SECRET }).dial(`127.0.0.1:${(server.address() as { port: number }).port}`, digest)!;
    let readied = false;
    conn.on('ready', () => (readied = true));
    await expect(conn.ready).rejects.toThrow(/closed before ready/);
    expect([readied, conn.violation, bans.isBanned('127.0.0.1')]).toEqual([false, 'bad handshake', true]);
  }, 30_000);

  it('a stranger keeping hundreds of idle sockets open from many addresses does not stop a member from connecting and pulling', async () => {
    const idle = new Set<Socket>();
    let opened = 0;
    let stop = false;
    const open = (from: string): void => {
      if (stop) return;
      const s = tcpConnect({ port: wirePort, host: '127.0.0.1', localAddress: from });
      opened++;
      idle.add(s);
      s.on('error', () => {});
      // The stranger reopens whatever the peer closes (after a pause, as a real flood would).
      s.once('close', () => (idle.delete(s), setTimeout(() => open(from), 50).unref()));
    };
    for (let a = 2; a < 22; a++) for (let i = 0; i < 20; i++) open(`127.0.0.${a}`);
    await new Promise((r) => setTimeout(r, 1_000));
    try {
      // Hundreds asked, the peer holds at most its handshake cap and closes the rest.
      expect(opened).toBeGreaterThan(400);
      const digest = layer.descriptor.digest as Digest;
      const member = new WireDialer({ bans: new AddressBans({ clock: systemClock }) }, { peerId: randomBytes(20), secret: SECRET }).dial(holder.agent.wireAddr, digest)!;
      await member.ready;
      member.destroy();
      const late = await startPeer(holder.agent.client.urls.slice(), { secret: SECRET });
      cleanups.push(() => late.close());
      expect(await late.pull(registry.url, 'test/attack', digest)).toBe(digest);
      expect(late.agent.totals.peer).toBeGreaterThanOrEqual(layer.blob.length / 2);
    } finally {
      stop = true;
      for (const s of idle) s.destroy();
    }
  }, 60_000);

  it('a member that sends forged piece proofs with its bad bytes poisons nothing: no hash is taken from it, none of its bytes are stored, the pull completes', async () => {
    // A layer the seed has not fetched yet, so the child lacks hashes when the forger is offered.
    const forged = await pushLayer('test/forged', 'attack-forged');
    const digest = forged.descriptor.digest as Digest;
    const size = forged.blob.length;
    const pieceSize = pieceSizeFor(size);
    const pieceCount = pieceCountFor(size, pieceSize);
    const forger = await startForger(digest, size, pieceSize);

    const child = await startPeer([supernodeUrl], { secret: SECRET });
    cleanups.push(() => child.close());
    const wasted = wastedBytes(child);
    expect(await child.pull(registry.url, 'test/forged', digest)).toBe(digest);
    expect((await child.store.stat(digest))?.size).toBe(size);
    // The forger was asked (so its proofs were read), and every byte it sent was thrown away:
    // unproved (the key did not check its proof), or corrupt once the hash was known (then banned).
    expect(forger.proofs).toBeGreaterThan(0);
    expect(forger.blocks).toBeGreaterThan(0);
    expect((wasted.unproved ?? 0) + (wasted.corrupt ?? 0)).toBeGreaterThan(0);
    expect(child.agent.totals.peer).toBe(0);
  }, 60_000);

  it('a member that sends forged proofs and bad bytes to a peer that commits on the vouched hash list gets none of them stored: the blob on disk is the digest\'s', async () => {
    // The forger is the only holder of the vouched layer besides the seed.
    const { digest, size } = await vouchedLayer('test/vouched', 'attack-vouched');
    const forger = await startForger(digest, size, pieceSizeFor(size));
    const child = await startPeer([supernodeUrl], { secret: SECRET });
    cleanups.push(() => child.close());
    const wasted = wastedBytes(child);
    const seen = watchDigests(child);
    for (const until = Date.now() + 10_000; seen.forgone === 0 && Date.now() < until; ) {
      expect(await child.pull(registry.url, 'test/vouched', digest)).toBe(digest);
      if (seen.forgone === 0) await child.store.delete(digest); // the seed was not done yet: again
    }
    // The ingest never hashed the blob; the bytes on disk are still exactly the digest's.
    expect(seen.forgone).toBe(1);
    expect(sha256Digest(Buffer.concat(await (await child.store.read(digest)).toArray()))).toBe(digest);
    expect(forger.proofs).toBeGreaterThan(0);
    expect((wasted.unproved ?? 0) + (wasted.corrupt ?? 0)).toBeGreaterThan(0);
    expect(child.agent.totals.peer).toBe(0);
    // Vouched unless a piece came from the registry fallback (then the whole file was hashed).
    expect(seen.vouched).toEqual([child.agent.totals.upstream === 0]);
  }, 90_000);

  it('a member that answers with a hash list of its own bytes teaches no hash: the list does not hash to the one the supernode vouched for, the member is dropped and asked for no list again, and the blob on disk is the digest\'s', async () => {
    // The child's task carries the list's hash, so its dials ask for the list; the forger is the
    // only holder besides the seed.
    const { digest, size } = await vouchedLayer('test/listed', 'attack-listed');
    const forger = await startForger(digest, size, pieceSizeFor(size), { list: true });
    const child = await startPeer([supernodeUrl], { secret: SECRET });
    cleanups.push(() => child.close());
    const seen = watchDigests(child);
    for (const until = Date.now() + 10_000; forger.lists === 0 && Date.now() < until; ) {
      expect(await child.pull(registry.url, 'test/listed', digest)).toBe(digest);
      if (forger.lists === 0) await child.store.delete(digest); // the seed was not done yet: again
    }
    expect(forger.lists).toBe(1);
    expect(forger.asked).toBe(1);
    expect(child.agent.totals.peer).toBe(0);
    expect(sha256Digest(Buffer.concat(await (await child.store.read(digest)).toArray()))).toBe(digest);
    expect(seen.vouched.at(-1)).toBe(child.agent.totals.upstream === 0);
  }, 90_000);

  it("a member replaying the supernode's genuine proofs of the blob's other layout poisons nothing: the index covers other bytes there, and the proof does not check", async () => {
    // A default piece and a small one: 2 pieces in the default layout, 1 + ratio in the small one.
    // Default piece 1 is bytes 512-640 KiB, as long as small piece 1 (128-256 KiB): a proof that
    // named no layout would make the child store the first at the second's place.
    const blob = randomBytes(DEFAULT_PIECE_BYTES + SMALL_PIECE_BYTES);
    const digest = sha256Digest(blob);
    const start = await fetch(`${registry.url}/v2/test/layouts/blobs/uploads/`, { method: 'POST' });
    const location = new URL(start.headers.get('location')!, registry.url);
    location.searchParams.set('digest', digest);
    expect((await fetch(location, { method: 'PUT', body: blob, headers: { 'content-type': 'application/octet-stream' } })).status).toBe(201);
    const upstream = { registry: registry.host, name: 'test/layouts' };

    // The genuine proof of default piece 1, from a supernode of the default layout.
    const { node: plain, data } = await startSupernode({ upstream: registry.url, secret: SECRET });
    cleanups.push(() => plain.close());
    const reader = new SupernodeClient({}, { urls: [plain.url], secret: SECRET, timeoutMs: 5_000 });
    cleanups.push(() => reader.close());
    await reader.register(plain.url, { peerId: 'reader', wireAddr: '127.0.0.1:1', uploadSlots: 1, holdings: [] });
    expect((await reader.createTask(plain.url, { peerId: 'reader', digest, upstream })).pieceSize).toBe(DEFAULT_PIECE_BYTES);
    const answer = await reader.seedPiece(plain.url, digest, 1, AbortSignal.timeout(30_000));
    for await (const c of answer.body) void c;
    const replayed = { index: 1, hash: answer.pieceHash()!, signature: answer.pieceSignature!()! };
    expect(replayed.hash).toBe(createHash('sha256').update(blob.subarray(DEFAULT_PIECE_BYTES)).digest('hex'));

    // A supernode with the same key whose cluster is large (small pieces), its seed slowed so the
    // child lacks hashes while the replaying member is offered.
    const smallData = await mkdtemp(join(tmpdir(), 'pollen-attack-layout-'));
    cleanups.push(() => rm(smallData, { recursive: true, force: true }));
    await copyFile(join(data, PIECE_KEY_FILE), join(smallData, PIECE_KEY_FILE));
    const { node: large } = await startSupernode({ upstream: registry.url, secret: SECRET, data: smallData, smallPiecesFrom: 0, seedRegistryRate: 64 * 1024 });
    cleanups.push(() => large.close());
    let sent = 0;
    let blocks = 0;
    const listener = new WireListener({ clock: systemClock, bans: new AddressBans({ clock: systemClock }), accept: (d) => d === digest }, { listen: '127.0.0.1:0', peerId: randomBytes(20), secret: SECRET, maxConnections: 8 });
    const proved = new Set<string>();
    /** Bytes the member served by piece index. */
    const served = new Map<number, number>();
    listener.on('ready', (conn) => {
      conn.sendBitfield(Bitfield.full(pieceCountFor(blob.length, SMALL_PIECE_BYTES)).bytes);
      conn.unchoke();
      conn.on('request', (index, offset, length, respond) => {
        const key = `${conn.remoteAddress}/${index}`;
        if (index === 1 && !proved.has(key)) {
          proved.add(key);
          conn.sendProof(replayed);
          sent++;
        }
        blocks++;
        served.set(index, (served.get(index) ?? 0) + length);
        // Served as if in the default layout: piece `index` from index * 512 KiB.
        const from = index * DEFAULT_PIECE_BYTES + offset;
        respond(null, Buffer.from(blob.subarray(from, from + length)));
      });
    });
    await listener.start(() => {});
    cleanups.push(() => listener.close());
    const member = new SupernodeClient({}, { urls: [large.url], secret: SECRET, timeoutMs: 5_000 });
    cleanups.push(() => member.close());
    // Claims the blob whole, as a holder reports it: the full bitfield of the default layout (2 pieces).
    await member.register(large.url, { peerId: 'replayer', wireAddr: `127.0.0.1:${listener.port}`, uploadSlots: 4, holdings: [{ digest, pieces: Bitfield.full(2).toBase64() }] });

    const child = await startPeer([large.url], { secret: SECRET });
    cleanups.push(() => child.close());
    const wasted = wastedBytes(child);
    expect(await child.pull(registry.url, 'test/layouts', digest)).toBe(digest);
    expect((await child.store.stat(digest))?.size).toBe(blob.length);
    expect(sent).toBeGreaterThan(0);
    expect(blocks).toBeGreaterThan(0);
    expect((wasted.unproved ?? 0) + (wasted.corrupt ?? 0)).toBeGreaterThan(0);
    // Nothing from the member but, at most, small piece 0: the one piece both layouts put at the
    // same bytes, which it serves right (the seed hands each piece's hash on as soon as it has the
    // piece, so the child may know that hash while the member is its parent).
    expect([0, SMALL_PIECE_BYTES]).toContain(child.agent.totals.peer);
    if (child.agent.totals.peer > 0) expect(served.get(0)).toBeGreaterThanOrEqual(SMALL_PIECE_BYTES);
    // Every byte stored once: no piece stored from the member and then fetched again.
    expect(child.agent.totals.peer + child.agent.totals.seed + child.agent.totals.upstream).toBe(blob.length);
  }, 60_000);
});

