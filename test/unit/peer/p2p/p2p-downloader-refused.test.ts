import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../../src/clock.ts';
import { MemoryKv } from '../../../../src/db.ts';
import { sha256Digest } from '../../../../src/digest.ts';
import { PollenError } from '../../../../src/errors.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { API } from '../../../../src/p2p/supernode-api.ts';
import type { BlobDownloader } from '../../../../peer/blob-downloader.ts';
import { P2pAgent } from '../../../../peer/p2p/p2p-agent.ts';
import { P2pDownloader } from '../../../../peer/p2p/p2p-downloader.ts';
import type { PersistedPieces } from '../../../../peer/p2p/transfer-seams.ts';

type TaskAnswer = { status: number; retryAfter?: number };

/**
 * A stand-in supernode on loopback: registers anyone, and answers task creations from `answers` in
 * turn (a 429 as the supernode refuses a peer over its allowance), keeping when each came.
 */
async function fakeSupernode(answers: TaskAnswer[]): Promise<{ url: string; tasks: number[]; server: Server }> {
  const tasks: number[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url === API.register) return res.end(JSON.stringify({ peerId: (JSON.parse(body) as { peerId: string }).peerId, token: 'a-token', heartbeatMs: 60_000 }));
      if (req.url === API.heartbeat) return res.end('{}');
      if (req.url === API.task) {
        tasks.push(Date.now());
        const a = answers[tasks.length - 1] ?? { status: 503 };
        res.statusCode = a.status;
        if (a.status === 429) {
          res.setHeader('retry-after', String(a.retryAfter));
          return res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: `try again in ${a.retryAfter} s`, detail: { pollenCode: 'ERR_TOO_MANY_REQUESTS', retryAfter: a.retryAfter } }] }));
        }
        if (a.status === 404) return res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'no such blob', detail: { pollenCode: 'ERR_BLOB_UNKNOWN' } }] }));
        return res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'seed unavailable' }] }));
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'no route' }] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tasks, server };
}

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

/** A downloader for the stand-in supernodes whose registry fallback only records when it was reached. */
async function downloaderFor(urls: string[]): Promise<{ downloader: P2pDownloader; fallbacks: number[] }> {
  const store = new MemoryContentStore();
  const agent = new P2pAgent(
    { store, logger: pino({ level: 'silent' }), clock: systemClock },
    { supernodes: urls, secret: '', wireListen: '127.0.0.1:0', wireAdvertise: undefined, uploadSlots: 4, uploadBytesPerSecond: 0, maxConnections: 8, supernodeTimeoutMs: 2_000 },
  );
  open.unshift(() => agent.close());
  await agent.start();
  const fallbacks: number[] = [];
  const fallback: BlobDownloader = {
    start: async () => {
      fallbacks.push(Date.now());
      throw new PollenError('ERR_BLOB_UNKNOWN', 'the registry fallback was reached');
    },
  };
  return { downloader: new P2pDownloader({ agent, store, kv: new MemoryKv<PersistedPieces>(), fallback }), fallbacks };
}

const request = { digest: sha256Digest('a layer'), sizeHint: 7, upstream: { baseUrl: 'http://127.0.0.1:1', name: 'app', authorization: undefined } };

async function serve(answers: TaskAnswer[]): Promise<{ url: string; tasks: number[] }> {
  const sn = await fakeSupernode(answers);
  open.push(() => new Promise<void>((r) => sn.server.close(() => r())));
  return sn;
}

describe('P2pDownloader: a task creation refused for the peer allowance', () => {
  it('asks the same supernode again after the Retry-After before anything else', async () => {
    const sn = await serve([{ status: 429, retryAfter: 1 }, { status: 503 }]);
    const { downloader, fallbacks } = await downloaderFor([sn.url]);
    await expect(downloader.start(request)).rejects.toThrow(/registry fallback was reached/);
    expect(sn.tasks).toHaveLength(2);
    expect(sn.tasks[1]! - sn.tasks[0]!).toBeGreaterThanOrEqual(950);
    expect(fallbacks).toHaveLength(1);
    expect(fallbacks[0]!).toBeGreaterThanOrEqual(sn.tasks[1]!);
  });

  it('asks the next supernode once the first refused twice', async () => {
    const first = await serve([{ status: 429, retryAfter: 1 }, { status: 429, retryAfter: 1 }, { status: 503 }]);
    const second = await serve([{ status: 503 }]);
    const { downloader, fallbacks } = await downloaderFor([first.url, second.url]);
    await expect(downloader.start(request)).rejects.toThrow(/registry fallback was reached/);
    // Which of the two owns the digest is the rendezvous order's choice: the refusing one is asked
    // twice and once only, wherever it stands.
    expect(first.tasks).toHaveLength(2);
    expect(second.tasks).toHaveLength(1);
    expect(fallbacks).toHaveLength(1);
  });

  it('falls back at once on an error that is not a refusal or an outage', async () => {
    const sn = await serve([{ status: 404 }]);
    const { downloader, fallbacks } = await downloaderFor([sn.url]);
    await expect(downloader.start(request)).rejects.toThrow(/registry fallback was reached/);
    expect(sn.tasks).toHaveLength(1);
    expect(fallbacks).toHaveLength(1);
  });
});
