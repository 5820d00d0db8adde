// An API call has one deadline for the whole answer: a supernode (or anything in the way) that
// sends its headers and then the body a byte at a time, each within undici's body timeout, is
// given up at the deadline.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SupernodeClient } from '../../../../peer/p2p/supernode-client.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function dribblingSupernode(): Promise<string> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/api/v1/peers') return res.end(JSON.stringify({ peerId: 'p1', token: 'token' }));
      // Headers now, then one byte of a JSON body every 100 ms, never the end.
      res.writeHead(200);
      res.write('{');
      const drip = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(drip));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('SupernodeClient deadline', () => {
  it('gives up a call whose answer keeps coming past the deadline, as unreachable', async () => {
    const url = await dribblingSupernode();
    const client = new SupernodeClient({}, { urls: [url], timeoutMs: 600 });
    cleanups.push(() => client.close());
    await client.register(url, { peerId: 'p1', wireAddr: '127.0.0.1:1', uploadSlots: 4, holdings: [] });
    const started = Date.now();
    await expect(client.heartbeat(url, 'p1')).rejects.toMatchObject({ code: 'ERR_SUPERNODE_UNAVAILABLE' });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(3_000);
  }, 10_000);

});
