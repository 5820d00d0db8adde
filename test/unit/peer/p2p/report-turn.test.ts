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

  it('sends a supernode that keeps what a report leaves out only what changed since the one it took', () => {
    const turn = new ReportTurn();
    const at = (n: number) => ({ version: '1.2.3', storeQuotaBytes: 1_000, storeBytes: n, uploadedBytes: n, downloadedBytes: 5 });
    // Nothing taken yet: the whole report, to either kind of supernode.
    expect(turn.body(at(1), true)).toEqual(at(1));
    turn.settle(10, false, at(1));
    expect(turn.body(at(2), true)).toEqual(at(2));
    turn.settle(20, true, at(2));
    expect(turn.body(at(3), true)).toEqual({ storeBytes: 3, uploadedBytes: 3 });
    // One from before (it replaces the report it holds) gets all of it.
    expect(turn.body(at(3), false)).toEqual(at(3));
    // Nothing changed: an empty report, which still stands for the heartbeat.
    turn.settle(30, true, at(3));
    expect(turn.body(at(3), true)).toEqual({});
    // A report not taken leaves what the supernode holds as it was.
    turn.settle(40, false, at(4));
    expect(turn.body(at(4), true)).toEqual({ storeBytes: 4, uploadedBytes: 4 });
    // Registered anew, the supernode holds nothing of it.
    turn.forget();
    expect(turn.body(at(4), true)).toEqual(at(4));
  });
});

/** A supernode whose task route holds each creation until `release`, then answers it (`fail`: with a 503). */
async function holdingSupernode(syncFields: string[] = []): Promise<{ url: string; tasks: Array<Record<string, unknown>>; release(fail?: boolean): void }> {
  const tasks: Array<Record<string, unknown>> = [];
  const held: Array<{ body: Record<string, unknown>; res: ServerResponse }> = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/api/v1/peers') return res.end(JSON.stringify({ peerId: 'p1', token: 'token', heartbeatMs: 1000, syncFields }));
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

  it('to a supernode that names reportChanges, the fields that changed since the one it took; all of them after registering again', async () => {
    const { url, tasks, release } = await holdingSupernode(['reportChanges']);
    const client = new SupernodeClient({}, { urls: [url], timeoutMs: 5_000 });
    cleanups.push(() => client.close());
    const registration = { peerId: 'p1', wireAddr: '127.0.0.1:1', uploadSlots: 4, holdings: [] };
    await client.register(url, registration);
    let uploaded = 7;
    client.reportWith(() => ({ version: '1.2.3', storeQuotaBytes: 1_000, uploadedBytes: uploaded }), () => 0);
    const created = async (c: string): Promise<unknown> => {
      const pending = await creations(client, url, c);
      release();
      await Promise.all(pending);
      return tasks.at(-1)?.report;
    };
    expect(await created('a')).toEqual({ version: '1.2.3', storeQuotaBytes: 1_000, uploadedBytes: 7 });
    uploaded = 9;
    expect(await created('b')).toEqual({ uploadedBytes: 9 });
    expect(await created('c')).toEqual({});
    await client.register(url, registration);
    expect(await created('d')).toEqual({ version: '1.2.3', storeQuotaBytes: 1_000, uploadedBytes: 9 });
  });
});
