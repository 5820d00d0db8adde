// The heartbeat's report rides on one request at a time: an image's layers are created together,
// and each creation took the report while none had been answered (an image of four layers sent it
// four times at the start of every pull, on the supernode host's downlink).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '../../../../src/digest.ts';
import { ReportTurn } from '../../../../peer/p2p/sync-batch.ts';
import { SupernodeClient } from '../../../../peer/p2p/supernode-client.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('ReportTurn', () => {
  it('gives the report to one request at a time, due again everyMs after the supernode took it, at once if it did not', () => {
    const turn = new ReportTurn();
    expect(turn.take(100, 1_000)).toBe(true);
    expect(turn.take(100, 1_000)).toBe(false);
    turn.settle(150, true);
    expect(turn.lastAt).toBe(150);
    expect(turn.take(900, 1_000)).toBe(false);
    expect(turn.take(1_150, 1_000)).toBe(true);
    turn.settle(1_200, false);
    expect(turn.lastAt).toBe(150);
    expect(turn.take(1_200, 1_000)).toBe(true);
    // The request that carries it is slow (a creation waiting on the registry): after everyMs another may carry it.
    expect(turn.take(2_100, 1_000)).toBe(false);
    expect(turn.take(2_200, 1_000)).toBe(true);
  });
});

/** A supernode whose task route holds each creation until `release`, then answers it (`fail`: with a 503). */
async function holdingSupernode(): Promise<{ url: string; tasks: Array<Record<string, unknown>>; release(fail?: boolean): void }> {
  const tasks: Array<Record<string, unknown>> = [];
  const held: Array<{ body: Record<string, unknown>; res: ServerResponse }> = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/api/v1/peers') return res.end(JSON.stringify({ peerId: 'p1', token: 'token', heartbeatMs: 1000 }));
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
      tasks.push(body);
      held.push({ body, res });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const release = (fail = false): void => {
    for (const { body, res } of held.splice(0)) {
      if (fail) {
        res.statusCode = 503;
        res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'busy' }] }));
        continue;
      }
      const digest = body.digest as Digest;
      const first = { hashes: [null], parents: [], seedGrants: [], availability: [0] };
      res.end(JSON.stringify({ digest, size: 10, pieceSize: 524_288, pieceCount: 1, hashes: [null], first, ...('report' in body ? { reported: true } : {}) }));
    }
  };
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tasks, release };
}

describe('SupernodeClient and the report', () => {
  const upstream = { registry: 'registry.test', name: 'app' };
  const digest = (c: string) => `sha256:${c.repeat(64)}` as Digest;

  async function creations(client: SupernodeClient, url: string, chars: string): Promise<Array<Promise<unknown>>> {
    const out = [...chars].map((c) => client.createTask(url, { digest: digest(c), upstream, first: { wantSeed: 1 } }).catch((err: unknown) => err));
    await new Promise((r) => setTimeout(r, 100));
    return out;
  }

  it("an image's layers created at once carry the report once; a creation that failed with it leaves it to the next", async () => {
    const { url, tasks, release } = await holdingSupernode();
    const client = new SupernodeClient({}, { urls: [url], timeoutMs: 5_000 });
    cleanups.push(() => client.close());
    await client.register(url, { peerId: 'p1', wireAddr: '127.0.0.1:1', uploadSlots: 4, holdings: [] });
    client.reportWith(() => ({ uploadedBytes: 7 }), () => 60_000);

    // Four layers at once: one carries it. It failed: the next creation carries it.
    let pending = await creations(client, url, 'abcd');
    expect(tasks.filter((t) => 'report' in t)).toHaveLength(1);
    release(true);
    await Promise.all(pending);
    expect(client.lastReportAt(url)).toBe(0);
    tasks.length = 0;
    pending = await creations(client, url, 'ef');
    expect(tasks.map((t) => 'report' in t)).toEqual([true, false]);
    // Taken: none carries it again until it is due (a minute here).
    release();
    await Promise.all(pending);
    expect(client.lastReportAt(url)).toBeGreaterThan(0);
    tasks.length = 0;
    pending = await creations(client, url, '12');
    expect(tasks.filter((t) => 'report' in t)).toHaveLength(0);
    release();
    await Promise.all(pending);
  });
});
