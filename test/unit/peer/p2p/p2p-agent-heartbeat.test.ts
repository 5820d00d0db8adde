import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../../src/clock.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { API } from '../../../../src/p2p/supernode-api.ts';
import { busyHeartbeatMs, P2pAgent } from '../../../../peer/p2p/p2p-agent.ts';

/** A stand-in supernode on loopback: registers anyone with `heartbeatMs` and counts heartbeats. */
async function fakeSupernode(heartbeatMs: number): Promise<{ url: string; beats: number[]; server: Server }> {
  const beats: number[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url === API.register) return res.end(JSON.stringify({ peerId: (JSON.parse(body) as { peerId: string }).peerId, token: 'a-token', heartbeatMs }));
      if (req.url === API.heartbeat) {
        beats.push(Date.now());
        return res.end('{}');
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'no route' }] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, beats, server };
}

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

async function idleAgentFor(heartbeatMs: number, ms: number): Promise<number> {
  const sn = await fakeSupernode(heartbeatMs);
  open.push(() => new Promise<void>((r) => sn.server.close(() => r())));
  const agent = new P2pAgent(
    { store: new MemoryContentStore(), logger: pino({ level: 'silent' }), clock: systemClock },
    { supernodes: [sn.url], secret: '', wireListen: '127.0.0.1:0', wireAdvertise: undefined, uploadSlots: 4, uploadBytesPerSecond: 0, maxConnections: 8, supernodeTimeoutMs: 2_000 },
  );
  open.unshift(() => agent.close());
  await agent.start();
  await new Promise((r) => setTimeout(r, ms));
  return sn.beats.length;
}

describe('an idle peer heart-beats at the period its supernode names', () => {
  it('every heartbeatMs the registration answered (300 ms: about five in 1.6 s, not one a second)', async () => {
    const beats = await idleAgentFor(300, 1_600);
    expect(beats).toBeGreaterThanOrEqual(3);
    expect(beats).toBeLessThanOrEqual(6);
  });

  it('no faster than every 500 ms whatever the supernode says', async () => {
    expect(await idleAgentFor(20, 1_600)).toBeLessThanOrEqual(4);
  });
});

describe('a busy peer heart-beats every second, or as seldom as a pacing supernode asks', () => {
  it('takes the period the last answer asked, between a second and the idle period; anything else is a second', () => {
    expect(busyHeartbeatMs(5_000, undefined)).toBe(1_000);
    expect(busyHeartbeatMs(5_000, 3_000)).toBe(3_000);
    expect(busyHeartbeatMs(5_000, 60_000)).toBe(5_000);
    expect(busyHeartbeatMs(5_000, 10)).toBe(1_000);
    for (const odd of ['3000', Number.NaN, Number.POSITIVE_INFINITY, -5, null]) expect(busyHeartbeatMs(5_000, odd)).toBe(1_000);
  });
});
