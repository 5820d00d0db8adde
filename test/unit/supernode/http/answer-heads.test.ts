// The cluster API's answers carry only the head a peer reads (supernode/http/apps.ts): at thousands
// of peers a sync answer is mostly its fixed cost on the supernode host's uplink, and the pacing and
// the simulation count that cost as ANSWER_HEAD_BYTES. Read on a real socket from the real app: the
// heads fit the constant, say nothing of keep-alive and yet the connection persists; a client that
// asks to close is told so; the peers' client reuses one idle connection past undici's default 4 s.
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../../src/clock.ts';
import { MemoryKv } from '../../../../src/db.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { RegistryHosts } from '../../../../src/oci/registry-hosts.ts';
import { API, type MetainfoBody } from '../../../../src/p2p/supernode-api.ts';
import { SupernodeClient } from '../../../../peer/p2p/supernode-client.ts';
import { createClusterApp } from '../../../../supernode/http/apps.ts';
import { Scheduler } from '../../../../supernode/p2p/scheduler.ts';
import { Seed } from '../../../../supernode/p2p/seed.ts';
import { ANSWER_HEAD_BYTES } from '../../../../supernode/p2p/sync-pacer.ts';
import { Tracker } from '../../../../supernode/p2p/tracker.ts';
import { FakeRegistry } from '../p2p/seed-fakes.ts';

const logger = pino({ level: 'silent' });
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function clusterApp() {
  const hosts = new RegistryHosts({ defaultUpstream: 'http://127.0.0.1:5000', registries: new Map() });
  const seed = new Seed({ store: new MemoryContentStore(), kv: new MemoryKv<MetainfoBody>(), logger, hosts, fetcher: new FakeRegistry() });
  const scheduler = new Scheduler({ clock: systemClock });
  const tracker = new Tracker({ clock: systemClock, onDrop: (p) => scheduler.dropPeer(p) });
  const app = createClusterApp(logger, { tracker, scheduler, seed, jobs: { work: () => ({ work: [], pollMs: 1_000 }) } }, { secret: undefined });
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => seed.close(), () => app.close());
  let connections = 0;
  app.server.on('connection', () => connections++);
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, port: (app.server.address() as AddressInfo).port, connections: () => connections };
}

interface RawAnswer {
  readonly status: number;
  readonly head: string;
  readonly headers: Map<string, string>;
  readonly body: string;
}

/** Sends one request on `socket` and reads its answer (a head and a content-length body). */
function exchange(socket: Socket, request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = got.subarray(0, end + 4).toString('latin1');
      const headers = new Map(
        head
          .split('\r\n')
          .slice(1)
          .filter((l) => l.includes(':'))
          .map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as const),
      );
      const length = Number(headers.get('content-length'));
      if (got.length < end + 4 + length) return;
      socket.off('data', onData);
      socket.off('error', reject);
      resolve({ status: Number(head.split(' ')[1]), head, headers, body: got.subarray(end + 4, end + 4 + length).toString() });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.write(request);
  });
}

function post(path: string, body: unknown, extra = ''): string {
  const json = JSON.stringify(body);
  return `POST ${path} HTTP/1.1\r\nhost: sn\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n${extra}\r\n${json}`;
}

const REGISTRATION = { peerId: 'p1', wireAddr: '127.0.0.1:1', uploadSlots: 4, holdings: [] };

describe('cluster API answer heads', () => {
  it('carry only the content type and length, within ANSWER_HEAD_BYTES, and the connection persists', async () => {
    const sn = await clusterApp();
    const socket = connect(sn.port, '127.0.0.1');
    cleanups.push(async () => socket.destroy());
    const registered = await exchange(socket, post(API.register, REGISTRATION));
    expect(registered.status).toBe(200);
    const token = (JSON.parse(registered.body) as { token: string }).token;
    const beat = await exchange(socket, post(API.heartbeat, {}, `authorization: Bearer ${token}\r\n`));
    const refused = await exchange(socket, post(API.register, {}));
    expect(beat.status).toBeLessThan(300);
    expect(refused.status).toBe(400);
    for (const a of [registered, beat, refused]) {
      expect([...a.headers.keys()].sort()).toEqual(['content-length', 'content-type']);
      expect(a.headers.get('content-type')).toBe('application/json');
    }
    // The constant is a 200's (a sync answer); an error's status line is longer.
    for (const a of [registered, beat]) expect(a.head.length).toBeLessThanOrEqual(ANSWER_HEAD_BYTES);
    // Three answers, one connection: nothing said of keep-alive, HTTP/1.1's default held.
    expect(sn.connections()).toBe(1);
    expect(socket.destroyed).toBe(false);
  });

  it('tell a client that asked to close that the connection closes', async () => {
    const sn = await clusterApp();
    const socket = connect(sn.port, '127.0.0.1');
    cleanups.push(async () => socket.destroy());
    const ended = new Promise<void>((r) => socket.once('end', () => r()));
    const a = await exchange(socket, post(API.register, REGISTRATION, 'connection: close\r\n'));
    expect(a.status).toBe(200);
    expect(a.headers.get('connection')).toBe('close');
    await ended;
  });

  it("are read by the peers' client, which keeps one idle connection past undici's default of 4 s", async () => {
    const sn = await clusterApp();
    const client = new SupernodeClient({}, { urls: [sn.url], timeoutMs: 5_000 });
    cleanups.push(() => client.close());
    await client.register(sn.url, REGISTRATION);
    await new Promise((r) => setTimeout(r, 4_500));
    await client.register(sn.url, REGISTRATION);
    expect(sn.connections()).toBe(1);
  }, 15_000);
});
