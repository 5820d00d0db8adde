// Property-based tests of what a remote party feeds the wire: the framing guard and the connection
// on arbitrary byte streams cut into arbitrary reads (never a throw; a violation closes and bans),
// and the TLS handshake of the real listener against random bytes, wrong keys and truncated hellos
// (closed within the deadline, with at most a TLS alert sent back).
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../../src/clock.ts';
import { generateSecret } from '../../../../src/cluster-tls.ts';
import { sha256Digest } from '../../../../src/digest.ts';
import { AddressBans } from '../../../../src/p2p/wire-bans.ts';
import { MAX_MESSAGE_BYTES } from '../../../../src/p2p/wire-blocks.ts';
import { WireConnection } from '../../../../src/p2p/wire-connection.ts';
import { infoHashOf } from '../../../../src/p2p/wire-extensions.ts';
import { WireGuard } from '../../../../src/p2p/wire-guard.ts';
import { WireListener } from '../../../../src/p2p/wire-listener.ts';
import { dialWire } from '../../../../src/p2p/wire-tls.ts';
import { FakeWireSocket } from '../../../helpers/fake-wire-socket.ts';

const digest = sha256Digest('blob');

/** Cuts `bytes` at the given points into successive reads. */
function cut(bytes: Uint8Array, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...at, bytes.length]) {
    if (p > prev) out.push(Buffer.from(bytes.subarray(prev, p)));
    prev = Math.max(prev, p);
  }
  return out;
}

function handshake(infoHash = infoHashOf(digest)): Buffer {
  const reserved = Buffer.alloc(8);
  reserved[5] = 0x10;
  return Buffer.concat([Buffer.from('\x13BitTorrent protocol', 'latin1'), reserved, Buffer.from(infoHash, 'hex'), randomBytes(20)]);
}

function frame(len: number, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(len);
  return Buffer.concat([b, payload]);
}

function incoming(bans: AddressBans): { conn: WireConnection; socket: FakeWireSocket } {
  const socket = new FakeWireSocket();
  const conn = WireConnection.incoming(socket as unknown as Socket, { peerId: randomBytes(20), bans }, (d) => d === digest);
  return { conn, socket };
}

/** bittorrent-protocol parses what it is given on later ticks. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

const chunks = fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { minLength: 1, maxLength: 12 });

describe('wire framing (properties)', () => {
  it('WireGuard never throws on arbitrary streams and refuses a first byte other than 19', () => {
    fc.assert(
      fc.property(chunks, (reads) => {
        const g = new WireGuard({ maxMessageBytes: MAX_MESSAGE_BYTES });
        let result: Buffer[] | string = [];
        for (const r of reads) {
          result = g.push(Buffer.from(r));
          if (typeof result === 'string') break;
        }
        const first = Buffer.concat(reads).find(() => true);
        if (first !== undefined && first !== 19) expect(typeof result).toBe('string');
      }),
      { numRuns: 300 },
    );
  });

  it('WireGuard refuses an oversize length wherever the reads cut the stream', () => {
    fc.assert(
      fc.property(fc.integer({ min: MAX_MESSAGE_BYTES + 1, max: 0xffffffff }), fc.array(fc.nat(200), { maxLength: 8 }), (len, points) => {
        const g = new WireGuard({ maxMessageBytes: MAX_MESSAGE_BYTES });
        const stream = Buffer.concat([handshake(), frame(1, Buffer.from([2])), frame(len, randomBytes(16))]);
        const results = cut(stream, points).map((r) => g.push(r));
        expect(results.some((r) => typeof r === 'string' && /exceeds/.test(r))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('a connection fed arbitrary bytes never throws; if closed for a violation, the address is banned', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), chunks, async (withHandshake, reads) => {
        const bans = new AddressBans({ clock: systemClock });
        const { conn, socket } = incoming(bans);
        conn.on('close', () => {});
        const stream = Buffer.concat([withHandshake ? handshake() : Buffer.alloc(0), ...reads]);
        for (const r of cut(stream, [7, 68, 69, 150])) socket.emit('data', r);
        await settle();
        if (conn.violation !== undefined) {
          expect(conn.isClosed).toBe(true);
          expect(bans.isBanned(socket.remoteAddress)).toBe(true);
        }
        if (!withHandshake && stream.length > 0 && stream[0] !== 19) expect(conn.violation).toBeDefined();
        conn.destroy();
      }),
      { numRuns: 300 },
    );
  });

  it('a connection closes and bans on an oversize frame or an extended handshake naming a bad digest, whatever came before', async () => {
    const ascii = fc.string({ unit: fc.constantFrom(...'abcdef0123456789:sh'), maxLength: 80 });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 3 }).map((id) => frame(1, Buffer.from([id]))), { maxLength: 5 }),
        fc.oneof(
          fc.integer({ min: MAX_MESSAGE_BYTES + 1, max: 0xffffffff }).map((len) => frame(len, randomBytes(8))),
          ascii.map((named) => {
            const body = Buffer.from(`d1:md13:pollen_accepti1ee13:pollen_digest${named.length}:${named}e`, 'latin1');
            return frame(2 + body.length, Buffer.concat([Buffer.from([20, 0]), body]));
          }),
        ),
        fc.array(fc.nat(400), { maxLength: 6 }),
        async (harmless, bad, points) => {
          const bans = new AddressBans({ clock: systemClock });
          const { conn, socket } = incoming(bans);
          conn.on('close', () => {});
          for (const r of cut(Buffer.concat([handshake(), ...harmless, bad]), points)) socket.emit('data', r);
          await settle();
          expect(conn.isClosed).toBe(true);
          expect(conn.violation).toBeDefined();
          expect(socket.destroyed).toBe(true);
          expect(bans.isBanned('10.9.8.7')).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('wire TLS handshake (properties, real sockets)', () => {
  const SECRET = generateSecret();
  const DEADLINE_MS = 400;
  let listener: WireListener;
  const readies: WireConnection[] = [];
  let clientHello: Buffer;

  beforeAll(async () => {
    listener = new WireListener(
      { clock: systemClock, bans: new AddressBans({ clock: systemClock }), accept: (d) => d === digest },
      { listen: '127.0.0.1:0', peerId: randomBytes(20), secret: SECRET, maxConnections: 16, admission: { maxHandshaking: 64, maxPerAddress: 64, handshakeTimeoutMs: DEADLINE_MS } },
    );
    listener.on('ready', (c) => readies.push(c));
    listener.on('closed', (c) => readies.push(c));
    await listener.start(() => {});
    // A member's first flight, recorded by a plain TCP server: the hello the truncations cut.
    const recorder = createServer((s) => s.once('data', (d: Buffer) => ((clientHello = d), s.destroy())));
    await new Promise<void>((r) => recorder.listen(0, '127.0.0.1', r));
    const member = dialWire(`127.0.0.1:${(recorder.address() as { port: number }).port}`, SECRET);
    member.on('error', () => {});
    await new Promise((r) => member.once('close', r));
    recorder.close();
  });
  afterAll(() => listener.close());

  /** Sends `bytes` from a raw socket; resolves with what came back once the listener closed it (or undefined). */
  function send(bytes: Uint8Array, waitMs = DEADLINE_MS + 1500): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const s = connect(listener.port, '127.0.0.1');
      const got: Buffer[] = [];
      const t = setTimeout(() => (s.destroy(), resolve(undefined)), waitMs);
      s.on('error', () => {});
      s.on('data', (d: Buffer) => got.push(d));
      s.once('connect', () => s.write(bytes));
      s.once('close', () => (clearTimeout(t), resolve(Buffer.concat(got))));
    });
  }

  /** Nothing, or TLS alert records only (content type 21, two bytes each). */
  function atMostAlerts(b: Buffer): boolean {
    for (let i = 0; i < b.length; i += 7) if (b[i] !== 0x15 || b.readUInt16BE(i + 3) !== 2) return false;
    return b.length % 7 === 0;
  }

  it('random bytes get at most a TLS alert and are closed within the deadline', async () => {
    expect(clientHello.length).toBeGreaterThan(100);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 2048 }), async (bytes) => {
        const got = await send(bytes);
        expect(got).toBeDefined();
        expect(atMostAlerts(got!)).toBe(true);
      }),
      { numRuns: 15 },
    );
    expect(readies).toEqual([]);
  }, 60_000);

  it('a hello cut anywhere (the rest never sent) is closed within the deadline and answered with nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: clientHello.length - 1 }), async (n) => {
        const got = await send(clientHello.subarray(0, n));
        expect(got).toEqual(Buffer.alloc(0));
      }),
      { numRuns: 10 },
    );
    expect(readies).toEqual([]);
  }, 60_000);

  it('any other key fails the handshake: the dialler is never ready and the listener never sees its request', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 0, maxLength: 64 }).filter((s) => s !== SECRET), async (key) => {
        const socket = dialWire(`127.0.0.1:${listener.port}`, key);
        socket.on('error', () => {});
        const got: Buffer[] = [];
        socket.on('data', (d: Buffer) => got.push(d));
        const conn = WireConnection.outgoing(socket, { peerId: randomBytes(20) }, digest);
        await expect(conn.ready).rejects.toThrow();
        expect(got).toEqual([]);
      }),
      { numRuns: 10 },
    );
    expect(readies).toEqual([]);
  }, 60_000);
});
