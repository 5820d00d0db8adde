// The wire over real loopback sockets: TLS with the cluster's wire key (the dialler proves it
// first), the digest exchange, blocks, and what a connection that breaks the protocol gets.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../../src/clock.ts';
import { generateSecret } from '../../../../src/cluster-tls.ts';
import { sha256Digest, type Digest } from '../../../../src/digest.ts';
import { AddressBans } from '../../../../src/p2p/wire-bans.ts';
import { PieceSigner, ProofVerifier, type PieceProof } from '../../../../src/p2p/piece-proof.ts';
import { MAX_MESSAGE_BYTES } from '../../../../src/p2p/wire-blocks.ts';
import { WireConnection } from '../../../../src/p2p/wire-connection.ts';
import { infoHashOf } from '../../../../src/p2p/wire-extensions.ts';
import { WireDialer } from '../../../../src/p2p/wire-dialer.ts';
import { WireListener } from '../../../../src/p2p/wire-listener.ts';
import { dialWire } from '../../../../src/p2p/wire-tls.ts';

const digest = sha256Digest('blob');
const SECRET = generateSecret();
const listeners: WireListener[] = [];
const rawServers: Server[] = [];
afterEach(async () => {
  for (const l of listeners.splice(0)) await l.close();
  for (const s of rawServers.splice(0)) await new Promise((r) => s.close(r));
});

/** The real wire listener serving `digest` with two pieces of 1 KiB (piece i = byte i+1). */
async function listen(secret: string): Promise<{ port: number; closed: string[]; bans: AddressBans }> {
  const closed: string[] = [];
  const bans = new AddressBans({ clock: systemClock });
  const listener = new WireListener({ clock: systemClock, bans, accept: (d) => d === digest }, { listen: '127.0.0.1:0', peerId: randomBytes(20), secret, maxConnections: 16 });
  listener.on('closed', (_c, r) => closed.push(r));
  listener.on('ready', (conn) => {
    conn.sendBitfield(new Uint8Array([0b11000000]));
    conn.unchoke();
    conn.on('request', (index, _offset, length, respond) => respond(null, Buffer.alloc(length, index + 1)));
  });
  await listener.start(() => {});
  listeners.push(listener);
  return { port: listener.port, closed, bans };
}

function dial(port: number, secret: string, d: Digest = digest): WireConnection {
  const socket = dialWire(`127.0.0.1:${port}`, secret);
  socket.on('error', () => {});
  return WireConnection.outgoing(socket, { peerId: randomBytes(20) }, d);
}

/** A plain TCP socket from `from` (another loopback address, so a ban of it spares 127.0.0.1). */
async function rawSocket(port: number, from = '127.0.0.1'): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', localAddress: from });
  await new Promise((r) => s.once('connect', r));
  return s;
}

function closedWithin(s: Socket, ms = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    s.on('error', () => {});
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
    s.resume();
  });
}

function handshakeBytes(infoHash: string): Buffer {
  const reserved = Buffer.alloc(8);
  reserved[5] = 0x10;
  return Buffer.concat([Buffer.from('\x13BitTorrent protocol', 'latin1'), reserved, Buffer.from(infoHash, 'hex'), randomBytes(20)]);
}

async function unchoked(c: WireConnection): Promise<void> {
  await c.ready;
  await new Promise<void>((r) => (c.peerChoking ? c.once('unchoke', () => r()) : r()));
}

describe('WireConnection over TLS with the cluster key', () => {
  it('a member completes TLS and the digest exchange, then gets the bitfield and blocks', async () => {
    const { port } = await listen(SECRET);
    const c = dial(port, SECRET);
    await unchoked(c);
    expect(c.peerHas(0) && c.peerHas(1)).toBe(true);
    expect(c.peerHas(2)).toBe(false);
    const block = await c.request(1, 0, 1024);
    expect(block.equals(Buffer.alloc(1024, 2))).toBe(true);
    c.destroy();
  });

  it('a dialler with another key fails the TLS handshake and learns nothing', async () => {
    const { port, closed } = await listen(SECRET);
    const c = dial(port, generateSecret());
    await expect(c.ready).rejects.toThrow(/closed before ready/);
    expect(c.peerHas(0)).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    // The listener never got as far as a wire connection: it has not even seen the info hash.
    expect(closed).toEqual([]);
  });

  it('a dialler without the key (plain TCP) is dropped by a listener that has one', async () => {
    const { port } = await listen(SECRET);
    await expect(dial(port, '').ready).rejects.toThrow();
  });

  it('refuses a digest it does not serve', async () => {
    const { port, closed } = await listen(SECRET);
    await expect(dial(port, SECRET, sha256Digest('other')).ready).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toContain('blob not served here');
  });

  it('the dialler names its piece layout: served in one the listener has, refused (not banned) in another, banned for a malformed one', async () => {
    const named: Array<number | undefined> = [];
    const closed: string[] = [];
    const bans = new AddressBans({ clock: systemClock });
    const accept = (d: Digest, pieceSize: number | undefined): boolean => {
      named.push(pieceSize);
      return d === digest && (pieceSize === undefined || pieceSize === 1024);
    };
    const listener = new WireListener({ clock: systemClock, bans, accept }, { listen: '127.0.0.1:0', peerId: randomBytes(20), secret: SECRET, maxConnections: 16 });
    const served: Array<number | undefined> = [];
    listener.on('ready', (conn) => served.push(conn.pieceSize));
    listener.on('closed', (_c, r) => closed.push(r));
    await listener.start(() => {});
    listeners.push(listener);
    const at = (pieceSize?: number): WireConnection => {
      const socket = dialWire(`127.0.0.1:${listener.port}`, SECRET);
      socket.on('error', () => {});
      return WireConnection.outgoing(socket, { peerId: randomBytes(20) }, digest, pieceSize);
    };
    const a = at(1024);
    await a.ready;
    const b = at();
    await b.ready;
    await expect(at(2048).ready).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 50));
    expect(served).toEqual([1024, undefined]);
    expect(named).toEqual([1024, undefined, 2048]);
    expect(closed).toContain('blob not served here');
    expect(bans.isBanned('127.0.0.1')).toBe(false);
    await expect(at(-1).ready).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 50));
    expect(named).toHaveLength(3);
    expect(bans.isBanned('127.0.0.1')).toBe(true);
    a.destroy('done');
    b.destroy('done');
  });
});

/**
 * A listener that answers the dialler's extended handshake with `pollen_accept` carrying `echo` (a
 * listener from before layouts echoes the digest alone). Raw bytes on plain TCP: the library has
 * one importer (src/p2p/wire-connection.ts).
 */
async function echoingListener(echo: string): Promise<number> {
  const frame = (msgId: number, body: Buffer): Buffer => {
    const head = Buffer.from([0, 0, 0, 0, 20, msgId]);
    head.writeUInt32BE(2 + body.length, 0);
    return Buffer.concat([head, body]);
  };
  const server = createServer((s) => {
    let got = Buffer.alloc(0);
    let shaken = false;
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      // The BEP 3 handshake first: the dialler sends its extended handshake once it has ours.
      if (!shaken && got.length >= 68) {
        shaken = true;
        s.write(handshakeBytes(got.subarray(28, 48).toString('hex')));
      }
      const text = got.toString('latin1');
      const id = /13:pollen_accepti(\d+)e/.exec(text)?.[1];
      if (id === undefined || !text.includes('pollen_digest')) return;
      s.removeAllListeners('data');
      s.write(Buffer.concat([frame(0, Buffer.from('d1:md13:pollen_accepti1eee', 'latin1')), frame(Number(id), Buffer.from(echo, 'latin1'))]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  rawServers.push(server);
  return (server.address() as { port: number }).port;
}

describe('a dialler reads the listener\'s pollen_accept', () => {
  const dialLayout = (port: number, bans: AddressBans): { conn: WireConnection; reason: Promise<string> } => {
    const socket = dialWire(`127.0.0.1:${port}`, '');
    socket.on('error', () => {});
    const conn = WireConnection.outgoing(socket, { peerId: randomBytes(20), bans }, digest, 1024);
    conn.ready.catch(() => {});
    return { conn, reason: new Promise((r) => conn.once('close', r)) };
  };

  it('its layout echoed: ready', async () => {
    const bans = new AddressBans({ clock: systemClock });
    const { conn } = dialLayout(await echoingListener(`${digest} 1024`), bans);
    await conn.ready;
    conn.destroy('done');
  });

  it('the digest alone (a parent from before layouts, serving the default one): refused, not banned', async () => {
    const bans = new AddressBans({ clock: systemClock });
    const { conn, reason } = dialLayout(await echoingListener(digest), bans);
    await expect(conn.ready).rejects.toThrow();
    expect(await reason).toBe('parent does not serve the layout named');
    expect(bans.isBanned('127.0.0.1')).toBe(false);
  });

  it('another digest or layout: a protocol violation, banned', async () => {
    for (const echo of [`${sha256Digest('other')} 1024`, `${digest} 2048`]) {
      const bans = new AddressBans({ clock: systemClock });
      const { conn, reason } = dialLayout(await echoingListener(echo), bans);
      await expect(conn.ready).rejects.toThrow();
      expect(await reason).toBe('protocol violation: accepted another digest or layout');
      expect(bans.isBanned('127.0.0.1')).toBe(true);
    }
  });
});

describe('WireConnection on plain TCP (no secret: loopback only)', () => {
  it('serves a dialler and drops one that floods requests or asks for oversized blocks', async () => {
    const { port, closed } = await listen('');
    const c = dial(port, '');
    await unchoked(c);
    expect((await c.request(0, 0, 512)).equals(Buffer.alloc(512, 1))).toBe(true);
    const p = c.request(0, 0, 1 << 20).catch((e: Error) => e);
    expect(await p).toBeInstanceOf(Error);
    await new Promise((r) => setTimeout(r, 50));
    expect(closed.some((r) => /protocol violation: request of/.test(r))).toBe(true);
  });

  it('small messages of one turn leave in one write, and each is answered (a block alone in its write: wire-blocks.test.ts)', async () => {
    const { port } = await listen('');
    const socket = dialWire(`127.0.0.1:${port}`, '');
    socket.on('error', () => {});
    const writes: number[] = [];
    const write = socket.write.bind(socket) as (chunk: Uint8Array, cb?: () => void) => boolean;
    (socket as { write: unknown }).write = (chunk: Uint8Array, cb?: () => void) => (writes.push(chunk.length), write(chunk, cb));
    const c = WireConnection.outgoing(socket, { peerId: randomBytes(20) }, digest);
    await unchoked(c);
    writes.length = 0;
    // Three requests asked in one turn (as a transfer fills a window): 17 bytes each, one write.
    const blocks = await Promise.all([c.request(0, 0, 100), c.request(1, 0, 200), c.request(0, 100, 300)]);
    expect(writes).toEqual([3 * 17]);
    expect(blocks.map((b) => [b.length, b[0]])).toEqual([[100, 1], [200, 2], [300, 1]]);
    c.destroy();
  });

  it('random bytes, a wrong handshake and oversized lengths close the socket and ban its address; others are still served', async () => {
    const { port, closed, bans } = await listen('');
    const junk = await rawSocket(port, '127.0.0.2');
    junk.write(randomBytes(4096));
    expect(await closedWithin(junk)).toBe(true);
    expect(bans.isBanned('127.0.0.2')).toBe(true);
    const again = await rawSocket(port, '127.0.0.2');
    expect(await closedWithin(again)).toBe(true);

    const wrong = await rawSocket(port, '127.0.0.3');
    wrong.write(Buffer.concat([Buffer.from('\x13BitTorrent protocoX', 'latin1'), randomBytes(48)]));
    expect(await closedWithin(wrong)).toBe(true);

    const big = await rawSocket(port, '127.0.0.4');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(MAX_MESSAGE_BYTES + 1);
    big.write(Buffer.concat([handshakeBytes(infoHashOf(digest)), len, Buffer.alloc(1024)]));
    expect(await closedWithin(big)).toBe(true);
    expect(closed.some((r) => /exceeds/.test(r))).toBe(true);
    expect(bans.isBanned('127.0.0.3') && bans.isBanned('127.0.0.4')).toBe(true);
    expect(bans.isBanned('127.0.0.1')).toBe(false);

    const ok = dial(port, '');
    await ok.ready;
    ok.destroy();
  }, 20_000);

  it('an error thrown by our own listener closes the connection as ours: no ban on either side, kept as failure', async () => {
    // The parent's side: its listener of a child's interest throws.
    const bans = new AddressBans({ clock: systemClock });
    const listener = new WireListener({ clock: systemClock, bans, accept: (d) => d === digest }, { listen: '127.0.0.1:0', peerId: randomBytes(20), secret: '', maxConnections: 16 });
    const closedConns: WireConnection[] = [];
    listener.on('closed', (conn) => closedConns.push(conn));
    listener.on('ready', (conn) => {
      conn.sendBitfield(new Uint8Array([0b11000000]));
      conn.on('interested', () => {
        throw new Error('bug in the uploader');
      });
    });
    await listener.start(() => {});
    listeners.push(listener);
    const child = dial(listener.port, '');
    await child.ready;
    child.interested();
    await new Promise<void>((r) => child.once('close', () => r()));
    expect(closedConns[0]?.failure?.message).toBe('bug in the uploader');
    expect(closedConns[0]?.violation).toBeUndefined();
    expect(bans.isBanned('127.0.0.1')).toBe(false);

    // The child's side: its listener of the parent's unchoke throws; the parent is not banned and is dialled again.
    const { port } = await listen('');
    const dialBans = new AddressBans({ clock: systemClock });
    const dialer = new WireDialer({ bans: dialBans }, { peerId: randomBytes(20), secret: '' });
    const conn = dialer.dial(`127.0.0.1:${port}`, digest)!;
    conn.on('unchoke', () => {
      throw new Error('bug in the transfer');
    });
    const reason = await new Promise<string>((r) => conn.once('close', r));
    expect(reason).toBe('internal error: bug in the transfer');
    expect(conn.failure?.message).toBe('bug in the transfer');
    expect(conn.violation).toBeUndefined();
    expect(dialBans.isBanned('127.0.0.1')).toBe(false);
    const again = dialer.dial(`127.0.0.1:${port}`, digest)!;
    await again.ready;
    // An error once the connection is closed (a close listener's): its owner heard 'close' already,
    // so it is reported as a process warning, and destroy does not throw.
    const warned = new Promise<Error>((r) => process.once('warning', r));
    again.on('close', () => {
      throw new Error('bug in a close listener');
    });
    again.destroy();
    expect((await warned).message).toBe('bug in a close listener');
    expect(again.isClosed && again.failure === undefined).toBe(true);
  });

  it('a dialler that never sends its extended handshake is closed at the handshake deadline, not banned', async () => {
    const { port, bans } = await listen('');
    const silent = await rawSocket(port, '127.0.0.5');
    silent.write(handshakeBytes(infoHashOf(digest)));
    expect(await closedWithin(silent, 8000)).toBe(true);
    expect(bans.isBanned('127.0.0.5')).toBe(false);
  }, 10_000);

  it('a parent that answers with a broken frame is banned by the dialling side and not dialled again', async () => {
    const hostile = createServer((s) => {
      s.on('error', () => {});
      s.write(Buffer.concat([handshakeBytes(infoHashOf(digest)), Buffer.from([0xff, 0xff, 0xff, 0xff, 1])]));
    });
    await new Promise<void>((r) => hostile.listen(0, '127.0.0.6', r));
    try {
      const bans = new AddressBans({ clock: systemClock });
      const dialer = new WireDialer({ bans }, { peerId: randomBytes(20), secret: '' });
      const addr = `127.0.0.6:${(hostile.address() as { port: number }).port}`;
      const conn = dialer.dial(addr, digest)!;
      await expect(conn.ready).rejects.toThrow(/protocol violation: message of/);
      expect(bans.isBanned('127.0.0.6')).toBe(true);
      expect(dialer.dial(addr, digest)).toBeUndefined();
    } finally {
      hostile.close();
    }
  });
});

describe('piece proofs on the wire (pollen_proof)', () => {
  const signer = PieceSigner.generate();
  const proofOf = (index: number): PieceProof => {
    const hash = createHash('sha256').update(`piece ${index}`).digest('hex');
    return { index, hash, signature: Buffer.from(signer.sign(digest, index, hash), 'base64') };
  };

  /** A listener that sends piece `index`'s proof ahead of each block it serves (`malformed`: five bytes instead). */
  async function proofListener(malformed = false): Promise<{ port: number; children: WireConnection[] }> {
    const children: WireConnection[] = [];
    const listener = new WireListener({ clock: systemClock, bans: new AddressBans({ clock: systemClock }), accept: (d) => d === digest }, { listen: '127.0.0.1:0', peerId: randomBytes(20), secret: '', maxConnections: 16 });
    listener.on('ready', (conn) => {
      children.push(conn);
      conn.sendBitfield(new Uint8Array([0b11000000]));
      conn.unchoke();
      conn.on('request', (index, _offset, length, respond) => {
        if (malformed) (conn as unknown as { wire: { extended(e: string, b: Buffer): void } }).wire.extended('pollen_proof', Buffer.alloc(5));
        else conn.sendProof(proofOf(index));
        respond(null, Buffer.alloc(length, index + 1));
      });
    });
    await listener.start(() => {});
    listeners.push(listener);
    return { port: listener.port, children };
  }

  it('both sides speak proofs; the child gets a proof, intact, before the block it came ahead of', async () => {
    const { port, children } = await proofListener();
    const c = dial(port, '');
    await unchoked(c);
    expect(c.speaksProofs).toBe(true);
    expect(children[0]!.speaksProofs).toBe(true);
    const order: string[] = [];
    const got: PieceProof[] = [];
    c.on('proof', (p) => {
      got.push(p);
      order.push('proof');
    });
    await c.request(1, 0, 1024).then(() => order.push('block'));
    expect(order).toEqual(['proof', 'block']);
    expect(got[0]!.index).toBe(1);
    expect(got[0]!.hash).toBe(proofOf(1).hash);
    expect(new ProofVerifier(signer.publicKey).verify(digest, got[0]!)).toBe(true);
    c.destroy();
  });

  it('a malformed proof from a parent is a protocol violation', async () => {
    const { port } = await proofListener(true);
    const c = dial(port, '');
    await unchoked(c);
    const closed = new Promise<string>((r) => c.once('close', r));
    await c.request(0, 0, 1024).catch(() => {});
    expect(await closed).toMatch(/malformed piece proof/);
    expect(c.violation).toBe('malformed piece proof');
  });

  it('a proof from a child (the dialling side) is a protocol violation at the parent', async () => {
    const { port, children } = await proofListener();
    const c = dial(port, '');
    await unchoked(c);
    const closed = new Promise<string>((r) => children[0]!.once('close', r));
    c.sendProof(proofOf(0));
    expect(await closed).toMatch(/unexpected piece proof/);
  });
});

describe('the hash list on the wire (pollen_hashes)', () => {
  const list = Buffer.alloc(3 * 32, 7);

  /** A listener that sends `payload` (default: the list) to each child that asked for it, as the uploader does; `again`: twice. */
  async function listListener(payload: Buffer = list, again = false): Promise<{ port: number; children: WireConnection[] }> {
    const children: WireConnection[] = [];
    const listener = new WireListener({ clock: systemClock, bans: new AddressBans({ clock: systemClock }), accept: (d) => d === digest }, { listen: '127.0.0.1:0', peerId: randomBytes(20), secret: '', maxConnections: 16 });
    listener.on('ready', (conn) => {
      children.push(conn);
      conn.sendBitfield(new Uint8Array([0b11000000]));
      const wants = conn.hashList.wants;
      if (payload === list) conn.hashList.send(payload);
      else (conn as unknown as { wire: { extended(e: string, b: Buffer): void } }).wire.extended('pollen_hashes', payload);
      if (again && wants) (conn as unknown as { wire: { extended(e: string, b: Buffer): void } }).wire.extended('pollen_hashes', payload);
      conn.unchoke();
    });
    await listener.start(() => {});
    listeners.push(listener);
    return { port: listener.port, children };
  }

  function dialFor(port: number, wantHashes: boolean): WireConnection {
    const socket = dialWire(`127.0.0.1:${port}`, '');
    socket.on('error', () => {});
    return WireConnection.outgoing(socket, { peerId: randomBytes(20) }, digest, undefined, wantHashes);
  }

  for (const asks of [true, false]) {
    it(asks ? 'a child that asks gets the list once, intact, right after the bitfield; the parent then counts it as served (no proofs for it)' : 'a child that does not ask gets no list (hashList.send does nothing)', async () => {
      const { port, children } = await listListener();
      const c = dialFor(port, asks);
      const got: Buffer[] = [];
      c.on('hashes', (l) => got.push(l));
      await unchoked(c);
      expect(got).toEqual(asks ? [list] : []);
      expect(children[0]!.hashList.sent).toBe(asks);
      expect(children[0]!.hashList.wants).toBe(false);
      c.destroy();
    });
  }

  for (const [name, payload, again, reason] of [
    ['a list of partial hashes', Buffer.alloc(33), false, 'malformed hash list'],
    ['an empty list', Buffer.alloc(0), false, 'malformed hash list'],
    ['a list longer than MAX_PIECES hashes', Buffer.alloc(1001 * 32), false, 'malformed hash list'],
    ['a second list', list.subarray(0, 64), true, 'unexpected hash list'],
  ] as const) {
    it(`${name} from a parent is a protocol violation`, async () => {
      const { port } = await listListener(Buffer.from(payload), again);
      const c = dialFor(port, true);
      const closed = new Promise<string>((r) => c.once('close', r));
      expect(await closed).toMatch(new RegExp(reason));
    });
  }

  it('a list to a dialler that did not ask for it is a protocol violation', async () => {
    const { port } = await listListener(Buffer.from(list.subarray(0, 32)), false);
    const c = dialFor(port, false);
    const closed = new Promise<string>((r) => c.once('close', r));
    expect(await closed).toMatch(/unexpected hash list/);
  });

  it('a list from a child (the dialling side) is a protocol violation at the parent', async () => {
    const { port, children } = await listListener();
    const c = dialFor(port, false);
    await unchoked(c);
    const closed = new Promise<string>((r) => children[0]!.once('close', r));
    (c as unknown as { wire: { extended(e: string, b: Buffer): void } }).wire.extended('pollen_hashes', list);
    expect(await closed).toMatch(/unexpected hash list/);
  });
});
