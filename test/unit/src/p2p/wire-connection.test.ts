import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Digest, type Digest } from '../../../../src/digest.ts';
import { WireConnection, MAX_MESSAGE_BYTES, infoHashOf } from '../../../../src/p2p/wire-connection.ts';

const digest = sha256Digest('blob');
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A listening side that serves `digest` with two pieces of 1 KiB (piece i = byte i+1). */
async function listen(secret: string, accepted: WireConnection[] = []): Promise<{ port: number; closed: string[] }> {
  const closed: string[] = [];
  const server = createServer((socket) => {
    const conn = WireConnection.incoming(socket, { peerId: randomBytes(20), secret }, (d) => d === digest);
    accepted.push(conn);
    conn.on('close', (r) => closed.push(r));
    conn.on('ready', () => {
      conn.sendBitfield(new Uint8Array([0b11000000]));
      conn.unchoke();
    });
    conn.on('request', (index, offset, length, respond) => respond(null, Buffer.alloc(length, index + 1)));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, closed };
}

function dial(port: number, secret: string, d: Digest = digest): WireConnection {
  return WireConnection.outgoing(connect(port, '127.0.0.1'), { peerId: randomBytes(20), secret }, d);
}

async function rawSocket(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
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

describe('WireConnection', () => {
  it('authenticates with the shared secret, then exchanges bitfield and blocks', async () => {
    const { port } = await listen('s3cret');
    const c = dial(port, 's3cret');
    await c.ready;
    await new Promise<void>((r) => (c.peerChoking ? c.once('unchoke', r) : r()));
    expect(c.peerHas(0) && c.peerHas(1)).toBe(true);
    expect(c.peerHas(2)).toBe(false);
    const block = await c.request(1, 0, 1024);
    expect(block.equals(Buffer.alloc(1024, 2))).toBe(true);
    c.destroy();
  });

  it('drops a peer with the wrong secret before it gets anything', async () => {
    const { port, closed } = await listen('s3cret');
    const c = dial(port, 'guess');
    await expect(c.ready).rejects.toThrow(/closed before ready/);
    expect(c.peerHas(0)).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(closed.some((r) => /wrong cluster secret/.test(r))).toBe(true);
  });

  it('drops a peer with no secret when one is configured', async () => {
    const { port } = await listen('s3cret');
    await expect(dial(port, '').ready).rejects.toThrow();
  });

  it('refuses a digest it does not serve', async () => {
    const { port, closed } = await listen('');
    await expect(dial(port, '', sha256Digest('other')).ready).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toContain('blob not served here');
  });

  it('drops random bytes, a wrong handshake and oversized lengths, and serves on', async () => {
    const { port, closed } = await listen('');
    const junk = await rawSocket(port);
    junk.write(randomBytes(4096));
    expect(await closedWithin(junk)).toBe(true);

    const wrong = await rawSocket(port);
    wrong.write(Buffer.concat([Buffer.from('\x13BitTorrent protocoX', 'latin1'), randomBytes(48)]));
    expect(await closedWithin(wrong)).toBe(true);

    const big = await rawSocket(port);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(MAX_MESSAGE_BYTES + 1);
    big.write(Buffer.concat([handshakeBytes(infoHashOf(digest)), len, Buffer.alloc(1024)]));
    expect(await closedWithin(big)).toBe(true);
    expect(closed.some((r) => /exceeds/.test(r))).toBe(true);

    const silent = await rawSocket(port);
    silent.write(handshakeBytes(infoHashOf(digest)));
    expect(await closedWithin(silent, 8000)).toBe(true); // no extended handshake: handshake timeout

    const ok = dial(port, '');
    await ok.ready;
    ok.destroy();
  }, 20_000);

  it('drops a peer that floods requests or asks for oversized blocks', async () => {
    const { port, closed } = await listen('');
    const c = dial(port, '');
    await c.ready;
    await new Promise<void>((r) => (c.peerChoking ? c.once('unchoke', r) : r()));
    const p = c.request(0, 0, 1 << 20).catch((e: Error) => e);
    expect(await p).toBeInstanceOf(Error);
    await new Promise((r) => setTimeout(r, 50));
    expect(closed.some((r) => /request of/.test(r))).toBe(true);
  });
});
