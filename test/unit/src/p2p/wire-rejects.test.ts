// The pollen_reject extension (src/p2p/wire-extensions.ts REJECT_EXT) on a socket the test feeds
// and reads: a parent that chokes a child which reads rejects tells it each request it drops, and
// rejects a request that reaches it while choking; a child whose parent sends rejects gives up only
// the requests rejected, so a choke and an unchoke that come together lose nothing. Without the
// extension on both sides, BEP 3 as before.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../../src/clock.ts';
import { generateSecret } from '../../../../src/cluster-tls.ts';
import { AddressBans } from '../../../../src/p2p/wire-bans.ts';
import { MAX_REQUESTS_WHILE_CHOKED, uploadBuffer } from '../../../../src/p2p/wire-blocks.ts';
import { WireConnection } from '../../../../src/p2p/wire-connection.ts';
import { WireListener } from '../../../../src/p2p/wire-listener.ts';
import { dialWire } from '../../../../src/p2p/wire-tls.ts';
import type { FakeWireSocket } from '../../../helpers/fake-wire-socket.ts';
import { digest, extended, frame, messagesOf, readyDialler, readyListener, settle } from '../../../helpers/wire-frames.ts';

const READS_REJECTS = '13:pollen_accepti1e13:pollen_rejecti3e';

/** The id this side's extended handshake gave pollen_reject (what the other side sends rejects under). */
function ourRejectId(socket: FakeWireSocket): number {
  const m = /13:pollen_rejecti(\d+)e/.exec(Buffer.concat(socket.written).toString('latin1'));
  if (!m) throw new Error('no pollen_reject in our extended handshake');
  return Number(m[1]);
}

/** The messages written, each as [id, extended id or -1, payload numbers (of a short one)]. */
function messages(written: Buffer[]): Array<[number, number, number[]]> {
  return messagesOf(written)
    .flat()
    .map((m) => {
      const id = m[4]!;
      const body = m.subarray(id === 20 ? 6 : 5);
      const nums: number[] = [];
      for (let i = 0; i + 4 <= body.length && body.length <= 12; i += 4) nums.push(body.readUInt32BE(i));
      return [id, id === 20 ? m[5]! : -1, nums];
    });
}

describe('rejects, serving side', () => {
  it('to a child that reads them: a choke rejects each request not answered and a request while choking is rejected; the answers of those never go', async () => {
    const { conn, socket } = await readyListener(undefined, READS_REJECTS);
    const asked: Array<(err: Error | null, data?: Uint8Array) => void> = [];
    conn.on('request', (_i, _o, _l, respond) => asked.push(respond));
    socket.emit('data', Buffer.concat([frame(6, 0, 0, 100), frame(6, 1, 0, 100)]));
    await settle();
    expect(asked).toHaveLength(2);
    asked[0]!(null, uploadBuffer(100));
    await settle();
    socket.written.length = 0;
    conn.choke();
    socket.emit('data', frame(6, 2, 0, 100));
    await settle();
    asked[1]!(null, uploadBuffer(100));
    await settle();
    // In the order made: the reject of what was asked, the choke, the reject of what came after it.
    expect(messages(socket.written)).toEqual([
      [20, 3, [1, 0, 100]],
      [0, -1, []],
      [20, 3, [2, 0, 100]],
    ]);
    expect(asked).toHaveLength(2);
    expect(conn.isClosed).toBe(false);
    conn.destroy();
  });

  it(`to a child that reads them: more than ${MAX_REQUESTS_WHILE_CHOKED} requests while choked is a flood, closed and banned`, async () => {
    const bans = new AddressBans({ clock: systemClock });
    const { conn, socket } = await readyListener(bans, READS_REJECTS);
    conn.on('request', () => {});
    conn.choke();
    socket.emit('data', Buffer.concat(Array.from({ length: MAX_REQUESTS_WHILE_CHOKED }, (_, i) => frame(6, i, 0, 16))));
    expect(conn.isClosed).toBe(false);
    socket.emit('data', frame(6, MAX_REQUESTS_WHILE_CHOKED, 0, 16));
    expect(conn.violation).toMatch(/while choked/);
    expect(bans.isBanned(socket.remoteAddress)).toBe(true);
  });

  it('to a child that does not name the extension: nothing but the choke (BEP 3)', async () => {
    const { conn, socket } = await readyListener();
    conn.on('request', () => {});
    socket.emit('data', frame(6, 0, 0, 100));
    await settle();
    socket.written.length = 0;
    conn.choke();
    socket.emit('data', frame(6, 1, 0, 100));
    await settle();
    expect(messages(socket.written)).toEqual([[0, -1, []]]);
    conn.destroy();
  });

  it('a reject from a child is a protocol violation', async () => {
    const { conn, socket, bans } = await readyListener(undefined, READS_REJECTS);
    socket.emit('data', extended(ourRejectId(socket), Buffer.alloc(12)));
    expect(conn.violation).toMatch(/unexpected reject/);
    expect(bans.isBanned(socket.remoteAddress)).toBe(true);
  });
});

describe('rejects, dialling side', () => {
  it('from a parent that sends them, a choke fails nothing: a reject fails its request, the others are answered after the unchoke, and nothing is discarded', async () => {
    const { conn, socket } = await readyDialler('13:pollen_accepti1e13:pollen_rejecti2e');
    const rejectId = ourRejectId(socket);
    const discarded: number[] = [];
    conn.on('discarded', (index) => discarded.push(index));
    const outcome: string[] = [];
    const a = conn.request(0, 0, 100).then(() => outcome.push('a answered'), (e: Error) => outcome.push(`a ${e.message}`));
    const b = conn.request(1, 0, 100).then(() => outcome.push('b answered'), (e: Error) => outcome.push(`b ${e.message}`));
    await settle();
    conn.receive(frame(0));
    await settle();
    expect(outcome).toEqual([]);
    expect(await conn.request(2, 0, 100).catch((e: Error) => e.message)).toMatch(/choking/);
    conn.receive(Buffer.concat([extended(rejectId, Buffer.concat([frame(0, 1, 0, 100).subarray(5)])), extended(rejectId, frame(0, 7, 0, 100).subarray(5)), frame(1)]));
    await b;
    expect(outcome).toEqual(['b request 1/0 failed: request was rejected']);
    conn.receive(frame(7, 0, 0, Buffer.alloc(100, 1)));
    await a;
    expect(outcome[1]).toBe('a answered');
    expect(discarded).toEqual([]);
    expect(conn.isClosed).toBe(false);
    conn.destroy();
  });

  it('from a parent that does not name the extension, a choke fails every request (BEP 3)', async () => {
    const { conn } = await readyDialler();
    const a = conn.request(0, 0, 100).catch((e: Error) => e.message);
    await settle();
    conn.receive(frame(0));
    expect(await a).toMatch(/choking/);
    conn.destroy();
  });

  it('a malformed reject is a protocol violation', async () => {
    const { conn, socket, bans } = await readyDialler('13:pollen_accepti1e13:pollen_rejecti2e');
    conn.receive(extended(ourRejectId(socket), Buffer.alloc(11)));
    expect(conn.violation).toMatch(/malformed reject/);
    expect(bans.isBanned(socket.remoteAddress)).toBe(true);
  });
});

describe('rejects between two peers (TLS on loopback)', () => {
  const listeners: WireListener[] = [];
  afterEach(async () => {
    for (const l of listeners.splice(0)) await l.close();
  });

  it('both sides name the extension; a parent that chokes and unchokes at once rejects what it dropped, and what the child asks after is answered', async () => {
    const secret = generateSecret();
    const listener = new WireListener({ clock: systemClock, bans: new AddressBans({ clock: systemClock }), accept: (d) => d === digest }, { listen: '127.0.0.1:0', peerId: randomBytes(20), secret, maxConnections: 4 });
    const parents: WireConnection[] = [];
    listener.on('ready', (conn) => {
      parents.push(conn);
      conn.sendBitfield(new Uint8Array([0b11000000]));
      conn.unchoke();
      // The first two requests wait; once both are here the parent takes the slot back and gives it
      // again in the same turn (as upload slots moving between blobs do), then reads them.
      const held: Array<() => void> = [];
      let flapped = false;
      conn.on('request', (index, _offset, length, respond) => {
        const answer = (): void => respond(null, Buffer.alloc(length, index + 1));
        if (flapped) return answer();
        held.push(answer);
        if (held.length < 2) return;
        flapped = true;
        conn.choke();
        conn.unchoke();
        for (const a of held) a();
      });
    });
    await listener.start(() => {});
    listeners.push(listener);
    const socket = dialWire(`127.0.0.1:${listener.port}`, secret);
    socket.on('error', () => {});
    const child = WireConnection.outgoing(socket, { peerId: randomBytes(20) }, digest);
    const discarded: number[] = [];
    child.on('discarded', (index) => discarded.push(index));
    await child.ready;
    await new Promise<void>((r) => (child.peerChoking ? child.once('unchoke', () => r()) : r()));
    expect(child.speaksRejects).toBe(true);
    expect(parents[0]!.speaksRejects).toBe(true);
    const first = await Promise.all([child.request(0, 0, 100), child.request(1, 0, 100)].map((p) => p.then(() => 'answered', (e: Error) => e.message)));
    expect(first).toEqual(['request 0/0 failed: request was rejected', 'request 1/0 failed: request was rejected']);
    await new Promise<void>((r) => (child.peerChoking ? child.once('unchoke', () => r()) : r()));
    expect((await child.request(1, 0, 100)).equals(Buffer.alloc(100, 2))).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(discarded).toEqual([]);
    child.destroy();
  });
});
