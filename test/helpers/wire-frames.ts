// Wire messages built byte by byte, and the two ends of a WireConnection on a FakeWireSocket that
// a test feeds and reads: for the tests of the block messages and the extensions framed beside
// them (src/p2p/wire-blocks.ts, wire-extensions.ts).
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { systemClock } from '../../src/clock.ts';
import { sha256Digest } from '../../src/digest.ts';
import { AddressBans } from '../../src/p2p/wire-bans.ts';
import { WireConnection } from '../../src/p2p/wire-connection.ts';
import { infoHashOf } from '../../src/p2p/wire-extensions.ts';
import { FakeWireSocket } from './fake-wire-socket.ts';

export const digest = sha256Digest('blob');

/** A message: length prefix, id, then each part (a number as 4 bytes big-endian). */
export function frame(id: number, ...parts: Array<number | Uint8Array>): Buffer {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p >>> 24, (p >>> 16) & 255, (p >>> 8) & 255, p & 255]) : Buffer.from(p))));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(1 + body.length);
  head[4] = id;
  return Buffer.concat([head, body]);
}

/** The BEP 3 handshake for `digest`, with the extension protocol's bit. */
export function handshake(): Buffer {
  const reserved = Buffer.alloc(8);
  reserved[5] = 0x10;
  return Buffer.concat([Buffer.from('\x13BitTorrent protocol', 'latin1'), reserved, Buffer.from(infoHashOf(digest), 'hex'), randomBytes(20)]);
}

/** A BEP 10 extended message with id `id` (0: the extended handshake). */
export function extended(id: number, body: string | Buffer): Buffer {
  return frame(20, Buffer.from([id]), typeof body === 'string' ? Buffer.from(body, 'latin1') : body);
}

/** The whole messages of each write (a message split across two writes fails the test). */
export function messagesOf(written: Buffer[]): Buffer[][] {
  return written.map((w) => {
    const out: Buffer[] = [];
    for (let at = 0; at < w.length; ) {
      const end = at + 4 + w.readUInt32BE(at);
      if (end > w.length) throw new Error(`a message split across writes: ${end - at} bytes at ${at} of a ${w.length}-byte write`);
      out.push(w.subarray(at, end));
      at = end;
    }
    return out;
  });
}

export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/**
 * A listening side that became ready for `digest` and unchoked the dialler. `mapping`: the
 * dialler's extended handshake's `m` (bencoded entries, sorted by name; pollen_accept is required).
 */
export async function readyListener(bans = new AddressBans({ clock: systemClock }), mapping = '13:pollen_accepti1e'): Promise<{ conn: WireConnection; socket: FakeWireSocket; bans: AddressBans }> {
  const socket = new FakeWireSocket();
  const conn = WireConnection.incoming(socket as unknown as Socket, { peerId: randomBytes(20), bans }, (d) => d === digest);
  conn.on('close', () => {});
  socket.emit('data', Buffer.concat([handshake(), extended(0, `d1:md${mapping}e13:pollen_digest${digest.length}:${digest}e`)]));
  await conn.ready;
  conn.unchoke();
  await settle();
  return { conn, socket, bans };
}

/** A dialling side that became ready (the listener accepted the digest) and was unchoked; `mapping` as readyListener's, the listener's. */
export async function readyDialler(mapping = '13:pollen_accepti1e'): Promise<{ conn: WireConnection; socket: FakeWireSocket; bans: AddressBans }> {
  const bans = new AddressBans({ clock: systemClock });
  const socket = new FakeWireSocket();
  const conn = WireConnection.outgoing(socket as unknown as Socket, { peerId: randomBytes(20), ownReads: true, bans }, digest);
  conn.on('close', () => {});
  conn.receive(Buffer.concat([handshake(), extended(0, `d1:md${mapping}ee`), extended(1, Buffer.from(digest, 'latin1')), frame(1)]));
  await conn.ready;
  await settle();
  if (conn.peerChoking) throw new Error('the dialler was not unchoked');
  return { conn, socket, bans };
}
