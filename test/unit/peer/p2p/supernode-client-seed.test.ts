// Seed pieces travel over HTTP to a supernode without a seed channel on one connection of their
// own, one after another (SEED_CONNECTIONS), and the API calls keep theirs: a heartbeat or sync never waits behind a piece
// the seed is still waiting on the registry for; a piece given up while others wait for the
// connection takes nothing else down. A real HTTP server stands in for the supernode's routes.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '../../../../src/digest.ts';
import { SupernodeClient } from '../../../../peer/p2p/supernode-client.ts';
import { waitFor } from '../../../helpers/tools.ts';

const DIGEST = `sha256:${'b'.repeat(64)}` as Digest;

async function collect(body: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of body) out.push(c);
  return out;
}

interface HeldPiece {
  readonly index: number;
  readonly socket: Socket;
  readonly res: ServerResponse;
}

async function fakeSupernode(): Promise<{ url: string; held: HeldPiece[]; sockets: Set<Socket>; close: () => Promise<void> }> {
  const held: HeldPiece[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const piece = /\/pieces\/(\d+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && piece) {
      held.push({ index: Number(piece[1]), socket: req.socket, res });
      return;
    }
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/api/v1/peers') return res.end(JSON.stringify({ peerId: 'p1', token: 'token' }));
      res.end('{}');
    });
  });
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    held,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('SupernodeClient seed pieces', () => {
  it('sends the pieces asked for on one connection, in order, and API calls do not wait behind them', async () => {
    const sn = await fakeSupernode();
    const client = new SupernodeClient({}, { urls: [sn.url], timeoutMs: 5_000 });
    cleanups.push(() => client.close(), () => sn.close());
    await client.register(sn.url, { peerId: 'p1', wireAddr: '127.0.0.1:1', uploadSlots: 4, holdings: [] });
    const signal = new AbortController().signal;
    const pieces = Array.from({ length: 4 }, (_, i) => client.seedPiece(sn.url, DIGEST, i, signal));

    // One request at a time: the first arrives now, on a connection of its own.
    await waitFor(async () => sn.held.length === 1, 'the first piece request', 2_000);
    const seedSocket = sn.held[0]!.socket;
    // The first piece is still held (the seed waits on the registry), and a heartbeat goes through.
    expect(await client.heartbeat(sn.url, 'p1')).toBeDefined();
    for (let i = 0; i < 4; i++) {
      await waitFor(async () => sn.held.length === i + 1, `the request for piece ${i}`, 2_000);
      const h = sn.held[i]!;
      expect(h.index).toBe(i);
      expect(h.socket).toBe(seedSocket);
      h.res.end(`piece-${i}`);
    }
    const bodies = await Promise.all(pieces.map(async (p) => (await collect((await p).body)).map(String).join('')));
    expect(bodies).toEqual(Array.from({ length: 4 }, (_, i) => `piece-${i}`));
    // The seed's connection, and the API's (register, heartbeat): two in all.
    expect(sn.sockets.size).toBe(2);
    // A supernode whose registration names no seed channel is asked over HTTP.
    expect(client.seedPieces).toEqual({ channel: 0, http: 4 });
  });

  it('a piece given up while it waits for the connection fails alone; the others still come', async () => {
    const sn = await fakeSupernode();
    const client = new SupernodeClient({}, { urls: [sn.url], timeoutMs: 5_000 });
    cleanups.push(() => client.close(), () => sn.close());
    await client.register(sn.url, { peerId: 'p1', wireAddr: '127.0.0.1:1', uploadSlots: 4, holdings: [] });
    const aborts = [0, 1, 2, 3].map(() => new AbortController());
    const pieces = aborts.map((a, i) =>
      client.seedPiece(sn.url, DIGEST, i, a.signal).then(
        async (answer) => (await collect(answer.body)).map(String).join(''),
        (err: Error) => `failed: ${err.message}`,
      ),
    );
    await waitFor(async () => sn.held.length === 1, 'the first piece request', 2_000);
    // Piece 1 is cancelled (a parent delivered it first) while piece 0's body is still to come.
    aborts[1]!.abort();
    await new Promise((r) => setTimeout(r, 50));
    sn.held[0]!.res.end('piece-0');
    for (const i of [2, 3]) {
      await waitFor(async () => sn.held.some((h) => h.index === i), `the request for piece ${i}`, 2_000);
      sn.held.find((h) => h.index === i)!.res.end(`piece-${i}`);
    }
    const got = await Promise.all(pieces);
    expect(got[0]).toBe('piece-0');
    expect(got[1]).toMatch(/^failed: /);
    expect(got.slice(2)).toEqual(['piece-2', 'piece-3']);
    expect(sn.held.map((h) => h.index)).not.toContain(1);
  });
});
