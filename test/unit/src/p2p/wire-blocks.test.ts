// The block messages (request, piece, cancel), which WireConnection frames and parses itself, on a
// socket the test feeds and reads: every answered request leaves whole in one write (a block alone
// in its write, small messages together), a cancelled or choked request is never answered, a
// dialler's request resolves only with the block it asked for, and a remote side that breaks the
// rules is closed and banned.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../../../src/clock.ts';
import { BLOCK_BYTES } from '../../../../src/p2p/metainfo.ts';
import { AddressBans } from '../../../../src/p2p/wire-bans.ts';
import { MAX_INCOMING_REQUESTS, uploadBuffer } from '../../../../src/p2p/wire-blocks.ts';
import { WireConnection } from '../../../../src/p2p/wire-connection.ts';
import { SMALL_MESSAGE_BYTES } from '../../../../src/p2p/wire-outbox.ts';
import { FakeWireSocket } from '../../../helpers/fake-wire-socket.ts';
import { digest, extended, frame, handshake, messagesOf, readyDialler, readyListener, settle } from '../../../helpers/wire-frames.ts';


/**
 * Piece messages among what was written, in order: [index, offset, block length, message length].
 * A write holding a message of SMALL_MESSAGE_BYTES or more holds nothing else (a block is never
 * copied to join others); smaller messages may share one.
 */
function pieces(written: Buffer[]): Array<[number, number, number, number]> {
  const all = messagesOf(written);
  for (const w of all) if (w.some((m) => m.length >= SMALL_MESSAGE_BYTES)) expect(w).toHaveLength(1);
  return all.flat().filter((m) => m.length >= 13 && m[4] === 7).map((m) => [m.readUInt32BE(5), m.readUInt32BE(9), m.readUInt32BE(0) - 9, m.length]);
}

describe('block messages, serving side', () => {
  it('answers each request not cancelled with its whole piece message, a block alone in its write', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.record({ index: fc.nat(20), block: fc.nat(3), length: fc.constantFrom(BLOCK_BYTES, 1, 1000, BLOCK_BYTES - 1), cancel: fc.boolean() }), {
          minLength: 1,
          maxLength: 12,
          selector: (r) => `${r.index}:${r.block}`,
        }),
        async (requests) => {
          const { conn, socket } = await readyListener();
          const asked: Array<{ index: number; offset: number; length: number; respond: (err: Error | null, data?: Uint8Array) => void }> = [];
          conn.on('request', (index, offset, length, respond) => asked.push({ index, offset, length, respond }));
          socket.emit('data', Buffer.concat(requests.map((r) => frame(6, r.index, r.block * BLOCK_BYTES, r.length))));
          expect(asked.map((a) => [a.index, a.offset, a.length])).toEqual(requests.map((r) => [r.index, r.block * BLOCK_BYTES, r.length]));
          socket.emit('data', Buffer.concat(requests.filter((r) => r.cancel).map((r) => frame(8, r.index, r.block * BLOCK_BYTES, r.length))));
          socket.written.length = 0;
          for (const a of asked) {
            const data = uploadBuffer(a.length);
            data.fill(a.index);
            a.respond(null, data);
          }
          await settle();
          const expected = requests.filter((r) => !r.cancel).map((r) => [r.index, r.block * BLOCK_BYTES, r.length, 13 + r.length]);
          expect(pieces(socket.written)).toEqual(expected);
          for (const m of messagesOf(socket.written).flat()) expect(m.subarray(13).every((b) => b === m.readUInt32BE(5) % 256)).toBe(true);
          expect(conn.isClosed).toBe(false);
          conn.destroy();
        },
      ),
      { numRuns: 40 },
    );
  });

  it('a request while choking is ignored, and choking drops the answers still to come', async () => {
    const { conn, socket } = await readyListener();
    const asked: Array<(err: Error | null, data?: Uint8Array) => void> = [];
    conn.on('request', (_i, _o, _l, respond) => asked.push(respond));
    socket.emit('data', frame(6, 0, 0, 100));
    conn.choke();
    socket.emit('data', frame(6, 1, 0, 100));
    await settle();
    socket.written.length = 0;
    expect(asked).toHaveLength(1);
    asked[0]!(null, uploadBuffer(100));
    await settle();
    expect(pieces(socket.written)).toEqual([]);
    expect(conn.isClosed).toBe(false);
    conn.destroy();
  });

  it(`more than ${MAX_INCOMING_REQUESTS} requests outstanding, a bad size or a malformed message closes and bans`, async () => {
    const bad = [
      Buffer.concat(Array.from({ length: MAX_INCOMING_REQUESTS + 1 }, (_, i) => frame(6, i, 0, 16))),
      frame(6, 0, 0, BLOCK_BYTES + 1),
      frame(6, 0, 0, 0),
      frame(6, 0, 0),
      frame(8, 0, 0, 16, 0),
      frame(7, 0),
    ];
    for (const bytes of bad) {
      const { conn, socket, bans } = await readyListener();
      conn.on('request', () => {});
      socket.emit('data', bytes);
      expect(conn.violation).toBeDefined();
      expect(conn.isClosed).toBe(true);
      expect(bans.isBanned(socket.remoteAddress)).toBe(true);
    }
  });

  it('a block message before the handshake is done closes and bans', async () => {
    for (const bytes of [frame(6, 0, 0, 16), frame(7, 0, 0, Buffer.alloc(16)), frame(8, 0, 0, 16)]) {
      const bans = new AddressBans({ clock: systemClock });
      const socket = new FakeWireSocket();
      const conn = WireConnection.incoming(socket as unknown as Socket, { peerId: randomBytes(20), bans }, (d) => d === digest);
      conn.on('close', () => {});
      socket.emit('data', Buffer.concat([handshake(), bytes]));
      await settle();
      expect(conn.violation).toMatch(/before the handshake/);
      expect(bans.isBanned(socket.remoteAddress)).toBe(true);
    }
  });
});

describe('block messages, dialling side', () => {
  it('a request resolves with the block asked for; other blocks and other lengths are dropped', async () => {
    const { conn, socket } = await readyDialler();
    socket.written.length = 0;
    let got: Buffer | undefined;
    void conn.request(3, BLOCK_BYTES, 100).then((b) => (got = b));
    await settle();
    expect(socket.written).toEqual([frame(6, 3, BLOCK_BYTES, 100)]);
    conn.receive(Buffer.concat([frame(7, 3, 0, Buffer.alloc(100, 1)), frame(7, 3, BLOCK_BYTES, Buffer.alloc(99, 2))]));
    await settle();
    expect(got).toBeUndefined();
    conn.receive(frame(7, 3, BLOCK_BYTES, Buffer.alloc(100, 3)));
    await settle();
    expect(got?.equals(Buffer.alloc(100, 3))).toBe(true);
    expect(conn.isClosed).toBe(false);
    conn.destroy();
  });

  it('a choke, a cancel or the close rejects what is still asked; a cancel is sent to the parent', async () => {
    const { conn, socket } = await readyDialler();
    const a = conn.request(0, 0, 10).catch((e: Error) => e.message);
    const b = conn.request(1, 0, 10).catch((e: Error) => e.message);
    await settle();
    socket.written.length = 0;
    conn.cancel(1, 0, 10);
    await settle();
    expect(socket.written).toEqual([frame(8, 1, 0, 10)]);
    expect(await b).toMatch(/cancelled/);
    conn.receive(frame(0));
    expect(await a).toMatch(/choking/);
    expect(await conn.request(2, 0, 10).catch((e: Error) => e.message)).toMatch(/choking/);
    conn.receive(frame(1));
    await settle();
    const c = conn.request(2, 0, 10).catch((e: Error) => e.message);
    conn.destroy();
    expect(await c).toMatch(/closed/);
  });

  it('the library\'s messages are handled in the read that brings them, in order with the blocks: a choke ahead of a block refuses it, a have behind one is known at once', async () => {
    const { conn } = await readyDialler();
    const discarded: Array<[number, number, boolean]> = [];
    conn.on('discarded', (index, bytes, cancelled) => discarded.push([index, bytes, cancelled]));
    const haves: number[] = [];
    conn.on('have', (i) => haves.push(i));
    const asked = conn.request(0, 0, 4).then(
      () => 'answered',
      (e: Error) => e.message,
    );
    // One read: a choke, then the block asked for (the parent speaks no rejects: the choke drops the ask).
    conn.receive(Buffer.concat([frame(0), frame(7, 0, 0, Buffer.alloc(4))]));
    expect(conn.peerChoking).toBe(true);
    expect(await asked).toMatch(/choking/);
    expect(discarded).toEqual([[0, 4, false]]);
    conn.receive(Buffer.concat([frame(1), frame(4, 3)]));
    expect([conn.peerChoking, haves, conn.peerHas(3)]).toEqual([false, [3], true]);
  });

  it('a handshake the library refuses (19, then another protocol) closes and bans in the read that brings it: an accept behind it never makes the connection ready', async () => {
    const bans = new AddressBans({ clock: systemClock });
    const socket = new FakeWireSocket();
    const conn = WireConnection.outgoing(socket as unknown as Socket, { peerId: randomBytes(20), ownReads: true, bans }, digest);
    conn.on('close', () => {});
    const bad = handshake();
    bad.write('BitTorrent protocoX', 1, 'latin1');
    conn.receive(Buffer.concat([bad, extended(0, 'd1:md13:pollen_accepti1eee'), extended(1, Buffer.from(digest, 'latin1')), frame(1)]));
    expect([conn.isClosed, conn.violation]).toEqual([true, 'bad handshake']);
    await expect(conn.ready).rejects.toThrow(/closed before ready/);
    expect(bans.isBanned(socket.remoteAddress)).toBe(true);
  });

  it('a hash list read ahead of the accept (as a parent of an earlier version sends it) is handed on as the connection gets ready', async () => {
    const socket = new FakeWireSocket();
    const conn = WireConnection.outgoing(socket as unknown as Socket, { peerId: randomBytes(20), ownReads: true }, digest, undefined, true);
    const seen: string[] = [];
    conn.on('hashes', (l) => seen.push(`hashes ${l.length}`));
    conn.on('ready', () => seen.push('ready'));
    // Our extended handshake names pollen_accept 1 and pollen_hashes 4 (usePollenExtensions' order).
    conn.receive(Buffer.concat([handshake(), extended(0, 'd1:md13:pollen_accepti1e13:pollen_hashesi9eee'), extended(4, Buffer.alloc(64, 7)), extended(1, Buffer.from(digest, 'latin1'))]));
    await conn.ready;
    expect(seen).toEqual(['hashes 64', 'ready']);
    expect(conn.isClosed).toBe(false);
  });

  it('a block that comes after its cancel (the parent had sent it) is reported as discarded and cancelled, with its bytes; one never asked or a copy past the cancelled ones as not cancelled', async () => {
    const { conn } = await readyDialler();
    const discarded: Array<[number, number, boolean]> = [];
    conn.on('discarded', (index, bytes, cancelled) => discarded.push([index, bytes, cancelled]));
    const a = conn.request(4, 0, 100).catch((e: Error) => e.message);
    await settle();
    conn.cancel(4, 0, 100);
    expect(await a).toMatch(/cancelled/);
    conn.receive(Buffer.concat([frame(7, 4, 0, Buffer.alloc(100, 1)), frame(7, 9, BLOCK_BYTES, Buffer.alloc(7, 2)), frame(7, 4, 0, Buffer.alloc(100, 1))]));
    await settle();
    expect(discarded).toEqual([[4, 100, true], [9, 7, false], [4, 100, false]]);
    // Cancelled, then asked again: the cancelled request's answer (sent before the cancel came)
    // answers the new request, and the new request's answer is the one that comes after it, counted
    // as the cancelled copy. A third is not.
    const b = conn.request(5, 0, 100).catch((e: Error) => e.message);
    await settle();
    conn.cancel(5, 0, 100);
    await b;
    const c = conn.request(5, 0, 100);
    await settle();
    conn.receive(frame(7, 5, 0, Buffer.alloc(100, 1)));
    expect((await c).length).toBe(100);
    conn.receive(Buffer.concat([frame(7, 5, 0, Buffer.alloc(100, 1)), frame(7, 5, 0, Buffer.alloc(100, 1))]));
    await settle();
    expect(discarded.slice(-2)).toEqual([[5, 100, true], [5, 100, false]]);
    expect(conn.isClosed).toBe(false);
    conn.destroy();
  });

  it('remembers the newest 256 cancelled blocks only: a parent that honoured its cancels leaves no growing record', async () => {
    const { conn } = await readyDialler();
    const discarded: Array<[number, boolean]> = [];
    conn.on('discarded', (index, _bytes, cancelled) => discarded.push([index, cancelled]));
    const asked = Array.from({ length: 300 }, (_, i) => conn.request(i, 0, 100).catch(() => undefined));
    await settle();
    for (let i = 0; i < 300; i++) conn.cancel(i, 0, 100);
    await Promise.all(asked);
    conn.receive(Buffer.concat([0, 43, 44, 299].map((i) => frame(7, i, 0, Buffer.alloc(100, 1)))));
    await settle();
    expect(discarded).toEqual([[0, false], [43, false], [44, true], [299, true]]);
    conn.destroy();
  });
});

describe("a parent's haves", () => {
  it('each piece is passed on once, however often a parent repeats it (the parent pool counts holders by them)', async () => {
    const { conn } = await readyDialler();
    const seen: number[] = [];
    conn.on('have', (i) => seen.push(i));
    conn.receive(Buffer.concat([frame(4, 3), frame(4, 3), frame(4, 7), frame(4, 3), frame(4, 7), frame(4, 1_000_000)]));
    await settle();
    expect(seen).toEqual([3, 7, 1_000_000]);
    expect(conn.isClosed).toBe(false);
  });
});
