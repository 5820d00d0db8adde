// The sync channel (src/p2p/sync-channel-frames.ts) against the real cluster app on a manual clock:
// a frame is refused exactly as POST /api/v1/syncs refuses the same body (status and error code),
// the token is checked at every frame (a peer the tracker dropped gets 401, then the channel
// closes), the peer's allowance counts its frames, and the peer's client (SupernodeClient) syncs on
// it, reads its errors as it reads the route's, and fails its call when the app closes. A task's
// creation on it is answered as POST /api/v1/tasks answers it, when the seed's admission is done,
// after frames sent behind it, at most CREATIONS_PER_CHANNEL at a time.
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { sha256Digest, type Digest } from '../../../../src/digest.ts';
import { listenOn } from '../../../../src/http-app.ts';
import { layoutFor } from '../../../../src/p2p/metainfo.ts';
import { packIndexes, taskName } from '../../../../src/p2p/sync-answer.ts';
import { SupernodeClient } from '../../../../peer/p2p/supernode-client.ts';
import { SyncChannels } from '../../../../peer/p2p/sync-channel.ts';
import { createClusterApp, type ClusterAppDeps } from '../../../../supernode/http/apps.ts';
import { CHANNELS_PER_PEER, CREATIONS_PER_CHANNEL } from '../../../../supernode/http/sync-channel.ts';
import { PeerRequestBudget } from '../../../../supernode/http/peer-request-budget.ts';
import type { SeedPort } from '../../../../supernode/p2p/routes-p2p.ts';
import { Scheduler } from '../../../../supernode/p2p/scheduler.ts';
import type { SeedTask } from '../../../../supernode/p2p/seed.ts';
import { PEER_TTL_MS, Tracker } from '../../../../supernode/p2p/tracker.ts';
import { pskChannel, type RawChannel } from '../../../helpers/psk-http.ts';

const DIGEST = sha256Digest('blob');

/** A seed of one blob; `admit` (when given) holds each creation until it resolves (the registry's admission). */
function oneBlobSeed(admit?: () => Promise<void>): SeedPort {
  const meta = layoutFor(DIGEST, 5 << 20);
  const task: SeedTask = { meta: { ...meta, hashes: meta.hashes.map((_, i) => `${i}`.padStart(64, '0')) }, state: { name: 'complete' } } as SeedTask;
  const openTask = async (): Promise<SeedTask> => {
    await admit?.();
    return task;
  };
  return { get: (d: Digest) => (d === DIGEST ? task : undefined), openTask, isAdmitted: () => true, served: () => {}, readPiece: async () => { throw new Error('no pieces here'); } } as unknown as SeedPort;
}

const apps: FastifyInstance[] = [];
const clients: SupernodeClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const a of apps.splice(0)) await a.close();
});

async function harness(perSecond?: number, seed: SeedPort = oneBlobSeed(), configure?: (app: FastifyInstance) => void, onChannelSyncs?: ClusterAppDeps['onChannelSyncs']): Promise<{ app: FastifyInstance; clock: ManualClock; tracker: Tracker; scheduler: Scheduler; url: string; port: number; register(peerId: string): Promise<string> }> {
  const clock = new ManualClock(0);
  const scheduler = new Scheduler({ clock }, {});
  const tracker = new Tracker({ clock, onDrop: (p) => scheduler.dropPeer(p) });
  const peerBudget = perSecond === undefined ? undefined : new PeerRequestBudget({ clock }, { perSecond });
  const app = createClusterApp(pino({ level: 'silent' }), { tracker, scheduler, seed, jobs: { work: () => ({ work: [], pollMs: 1_000 }) }, ...(peerBudget ? { peerBudget } : {}), ...(onChannelSyncs ? { onChannelSyncs } : {}) }, { secret: undefined });
  apps.push(app);
  configure?.(app);
  const url = await listenOn(app, '127.0.0.1:0');
  return {
    app, clock, tracker, scheduler, url, port: Number(new URL(url).port),
    async register(peerId) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/peers', payload: { peerId, wireAddr: '127.0.0.1:4000', uploadSlots: 4 } });
      expect(res.statusCode, res.body).toBe(200);
      const token = (res.json() as { token: string }).token;
      expect((await app.inject({ method: 'POST', url: '/api/v1/tasks', headers: { authorization: `Bearer ${token}` }, payload: { digest: DIGEST, upstream: { registry: 'registry.test', name: 'app' } } })).statusCode).toBe(200);
      return token;
    },
  };
}

/** A channel over plain TCP (the app has no secret: loopback), spoken byte for byte. */
async function channel(port: number, token: string): Promise<RawChannel> {
  const res = await pskChannel(port, undefined, { path: '/api/v1/syncs/channel', headers: { connection: 'Upgrade', upgrade: 'pollen-syncs/1', authorization: `Bearer ${token}` } });
  if ('status' in res) throw new Error(`no channel: ${res.status} ${res.body}`);
  return res;
}

const anyJson = fc.jsonValue({ maxDepth: 3 });
const item = fc.record(
  {
    digest: fc.oneof(fc.constant(DIGEST), fc.string({ maxLength: 20 })),
    task: fc.oneof(fc.constant(taskName(DIGEST)), fc.constant(taskName(sha256Digest('other'))), fc.string({ maxLength: 20 })),
    have: fc.oneof(fc.array(fc.integer({ min: -2, max: 20 }), { maxLength: 5 }), anyJson),
    wantSeed: fc.oneof(fc.integer({ min: -1, max: 8 }), anyJson),
    badParents: fc.oneof(fc.constant([]), anyJson),
    terse: fc.oneof(fc.boolean(), anyJson),
  },
  { requiredKeys: [] },
);
const batch = fc.oneof(anyJson, fc.record({ syncs: fc.oneof(fc.array(item, { maxLength: 3 }), anyJson), report: fc.oneof(fc.constant({}), anyJson) }, { requiredKeys: [] }));
const creation = fc.oneof(
  anyJson,
  fc.record(
    {
      digest: fc.oneof(fc.constant(DIGEST), fc.string({ maxLength: 20 })),
      sizeHint: fc.oneof(fc.integer({ min: -1, max: 6 << 20 }), anyJson),
      upstream: fc.oneof(fc.constant({ registry: 'registry.test', name: 'app' }), fc.record({ registry: fc.string({ maxLength: 12 }), name: fc.string({ maxLength: 12 }), authorization: fc.string({ maxLength: 12 }) }, { requiredKeys: [] }), anyJson),
      first: fc.oneof(fc.record({ wantSeed: fc.integer({ min: -1, max: 8 }) }), anyJson),
      terse: fc.oneof(fc.boolean(), anyJson),
      pieceSize: fc.oneof(fc.constant(1 << 20), fc.integer({ min: -1, max: 1 << 30 }), anyJson),
    },
    { requiredKeys: [] },
  ),
);
const code = (b: unknown): unknown => (b as { errors?: Array<{ detail: { pollenCode: string } }> }).errors?.[0]?.detail.pollenCode;

describe('the sync channel', () => {
  /**
   * Each body of `bodies` as a frame of `kind` and as a POST to `route`: the same status and error
   * code, and for an answer `same` says what must agree.
   */
  const asTheRoute = async (kind: 'b' | 't', route: string, bodies: fc.Arbitrary<unknown>, same: (channel: unknown, http: unknown) => void): Promise<void> => {
    const h = await harness();
    const token = await h.register('p1');
    const ch = await channel(h.port, token);
    let id = 0;
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const res = await h.app.inject({ method: 'POST', url: route, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
        ch.frame({ i: ++id, [kind]: body });
        const a = await ch.next();
        expect([a.i, a.s]).toEqual([id, res.statusCode]);
        expect(code(a.b)).toEqual(code(res.json()));
        if (res.statusCode === 200) same(a.b, res.json());
      }),
      { numRuns: 150 },
    );
    ch.destroy();
  };

  it('answers any body with the status and error code POST /api/v1/syncs gives it', async () => {
    await asTheRoute('b', '/api/v1/syncs', batch, (a, b) => expect((a as { syncs: unknown[] }).syncs.length).toBe((b as { syncs: unknown[] }).syncs.length));
  });

  it('answers a creation frame with the status and error code POST /api/v1/tasks gives the same body, and its answer', async () => {
    await asTheRoute('t', '/api/v1/tasks', creation, (a, b) => expect(Object.keys(a as object).sort()).toEqual(Object.keys(b as object).sort()));
  });

  it('answers a creation once the seed admitted the peer, after the frames sent behind it; at most CREATIONS_PER_CHANNEL at a time, more refused with 429', async () => {
    let release!: () => void;
    let gate = new Promise<void>((r) => (release = r));
    const h = await harness(undefined, oneBlobSeed(() => gate));
    const registered = new Promise<string>((resolve) => void h.register('p1').then(resolve));
    release();
    const token = await registered;
    gate = new Promise<void>((r) => (release = r));
    const ch = await channel(h.port, token);
    const task = { digest: DIGEST, upstream: { registry: 'registry.test', name: 'app' }, first: { wantSeed: 1 } };
    ch.frame({ i: 1, t: task });
    ch.frame({ i: 2, b: { syncs: [{ digest: DIGEST, have: [], wantSeed: 0, badParents: [] }] } });
    const sync = await ch.next();
    expect([sync.i, sync.s]).toEqual([2, 200]);
    for (let i = 3; i <= CREATIONS_PER_CHANNEL + 1; i++) ch.frame({ i, t: task });
    ch.frame({ i: 100, t: task });
    const refused = await ch.next();
    expect([refused.i, refused.s, code(refused.b)]).toEqual([100, 429, 'ERR_TOO_MANY_REQUESTS']);
    release();
    const answered = new Map<number, { s: number; b: unknown }>();
    for (let k = 0; k < CREATIONS_PER_CHANNEL; k++) {
      const a = await ch.next();
      answered.set(a.i, a);
    }
    expect([...answered.keys()].sort((a, b) => a - b)).toEqual([1, ...Array.from({ length: CREATIONS_PER_CHANNEL - 1 }, (_, k) => k + 3)]);
    expect([...answered.values()].every((a) => a.s === 200 && (a.b as { digest: string }).digest === DIGEST && (a.b as { first?: unknown }).first !== undefined)).toBe(true);
    // Room again: the next one is answered.
    ch.frame({ i: 200, t: task });
    expect((await ch.next()).s).toBe(200);
    // A creation still under way when its channel goes is dropped with it; the supernode goes on.
    gate = new Promise<void>((r) => (release = r));
    ch.frame({ i: 300, t: task });
    ch.destroy();
    release();
    const again = await channel(h.port, token);
    again.frame({ i: 1, t: task });
    expect((await again.next()).s).toBe(200);
    again.destroy();
  });

  it('fails a creation not answered in time alone when the channel answered since it was sent (the supernode is there); closes the channel when nothing came', async () => {
    let release: () => void = () => {};
    let gate = Promise.resolve();
    const h = await harness(undefined, oneBlobSeed(() => gate));
    let connections = 0;
    h.app.server.on('connection', () => connections++);
    const token = await h.register('p1');
    gate = new Promise<void>((r) => (release = r));
    const creation = JSON.stringify({ digest: DIGEST, upstream: { registry: 'registry.test', name: 'app' }, first: { wantSeed: 1 } });
    const batch = JSON.stringify({ syncs: [{ digest: DIGEST, have: [], wantSeed: 0, badParents: [] }] });
    const alive = new SyncChannels({});
    const created = alive.call(h.url, token, creation, 300, 't');
    const failed = expect(created).rejects.toMatchObject({ code: 'ERR_SUPERNODE_UNAVAILABLE', message: expect.stringContaining("no answer to the task's creation") });
    expect((await alive.call(h.url, token, batch, 5_000, 'b'))?.status).toBe(200);
    await failed;
    // The same channel goes on: the next sync opens no connection.
    const opened = connections;
    expect((await alive.call(h.url, token, batch, 5_000, 'b'))?.status).toBe(200);
    expect(connections).toBe(opened);
    // Nothing answered since the creation was sent: the channel may be dead, and closes.
    const silent = new SyncChannels({});
    await expect(silent.call(h.url, token, creation, 300, 't')).rejects.toMatchObject({ code: 'ERR_SUPERNODE_UNAVAILABLE', message: expect.stringContaining('no answer within 300 ms') });
    expect((await silent.call(h.url, token, batch, 5_000, 'b'))?.status).toBe(200);
    expect(connections).toBe(opened + 2);
    // The late answers find no call waiting, and change nothing.
    release();
    expect((await alive.call(h.url, token, batch, 5_000, 'b'))?.status).toBe(200);
    alive.close();
    silent.close();
  });

  it("counts a creation's first sync in the supernode's syncs, without its time, which is the registry's, and a refused one not at all (as over HTTP)", async () => {
    const counted: Array<[number, number | undefined]> = [];
    const h = await harness(undefined, undefined, undefined, (items, seconds) => counted.push([items, seconds]));
    const token = await h.register('p1');
    const ch = await channel(h.port, token);
    ch.frame({ i: 1, t: { digest: DIGEST, upstream: { registry: 'registry.test', name: 'app' }, first: { wantSeed: 1 } } });
    ch.frame({ i: 2, t: { digest: DIGEST, upstream: { registry: 'registry.test', name: 'app' } } });
    ch.frame({ i: 3, b: { syncs: [{ digest: DIGEST, have: [], wantSeed: 0, badParents: [] }] } });
    for (let k = 0; k < 3; k++) expect((await ch.next()).s).toBe(200);
    // A refused creation counts nothing, as a refused POST /api/v1/tasks.
    ch.frame({ i: 4, t: { digest: 'x', upstream: { registry: 'registry.test', name: 'app' }, first: { wantSeed: 1 } } });
    expect((await ch.next()).s).toBe(400);
    // Answered in either order: the creations' after their admission, the batch's at once.
    expect(counted).toHaveLength(2);
    expect(counted).toContainEqual([1, undefined]);
    expect(counted).toContainEqual([1, expect.any(Number)]);
    ch.destroy();
  });

  it("is where the peer's client creates its tasks when the supernode names it (RegisterResponse.channelCalls); over HTTP with one that does not", async () => {
    const overHttp: string[] = [];
    const watch = (app: FastifyInstance): void => {
      app.addHook('onRequest', async (request) => {
        if (request.url === '/api/v1/tasks') overHttp.push(request.method);
      });
    };
    const h = await harness(undefined, undefined, watch);
    const client = new SupernodeClient({}, { urls: [h.url], timeoutMs: 5_000 });
    clients.push(client);
    const registration = await client.register(h.url, { peerId: 'p4', wireAddr: '127.0.0.1:4003', uploadSlots: 4, holdings: [] });
    expect(registration.channelCalls).toEqual(['task', 'seed']);
    const created = await client.createTask(h.url, { digest: DIGEST, upstream: { registry: 'registry.test', name: 'app' }, first: { wantSeed: 1 } });
    expect(created).toMatchObject({ digest: DIGEST, pieceCount: layoutFor(DIGEST, 5 << 20).pieceCount });
    expect(created.first?.hashes).toBeDefined();
    expect(overHttp).toEqual([]);
    // A refusal comes back as the route's error, as over HTTP.
    await expect(client.createTask(h.url, { digest: 'sha256:nope' as Digest, upstream: { registry: 'registry.test', name: 'app' } })).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    expect(overHttp).toEqual([]);
    // A supernode that names no channel calls (one from before) gets its creations over HTTP.
    const old = await harness(undefined, undefined, (app) => {
      watch(app);
      app.addHook('onSend', async (request, _reply, payload) => (request.url === '/api/v1/peers' && typeof payload === 'string' ? payload.replace(/,"channelCalls":\[[^\]]*\]/, '') : payload));
    });
    const older = new SupernodeClient({}, { urls: [old.url], timeoutMs: 5_000 });
    clients.push(older);
    expect((await older.register(old.url, { peerId: 'p5', wireAddr: '127.0.0.1:4004', uploadSlots: 4, holdings: [] })).channelCalls).toBeUndefined();
    expect(await older.createTask(old.url, { digest: DIGEST, upstream: { registry: 'registry.test', name: 'app' } })).toMatchObject({ digest: DIGEST });
    expect(overHttp).toEqual(['POST']);
  });

  it('answers 401 and closes once the tracker dropped the peer; counts frames against the allowance', async () => {
    const h = await harness(1);
    const token = await h.register('p1');
    const ch = await channel(h.port, token);
    const body = { syncs: [{ digest: DIGEST, have: [], wantSeed: 0, badParents: [] }] };
    const statuses: number[] = [];
    for (let i = 1; i <= 300; i++) ch.frame({ i, b: body });
    const answers: Array<{ s: number; b: unknown }> = [];
    for (let i = 1; i <= 300; i++) answers.push(await ch.next());
    statuses.push(...answers.map((a) => a.s));
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    // A refusal says how long to wait, as over HTTP (Retry-After there): whole seconds, 1 here (the clock stands still, the allowance is at 0).
    expect(answers.find((a) => a.s === 429)!.b).toMatchObject({ errors: [{ detail: { pollenCode: 'ERR_TOO_MANY_REQUESTS', retryAfter: 1 } }] });
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    // A poisoned frame is charged before it is refused for what it holds, as over HTTP.
    for (let i = 1; i <= 20; i++) ch.frame(`{"i":${1000 + i},"b":{"syncs":[],"__proto__":{"x":1}}}`);
    const poisoned: number[] = [];
    for (let i = 1; i <= 20; i++) poisoned.push((await ch.next()).s);
    expect(poisoned.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(poisoned.every((s) => s === 400 || s === 429)).toBe(true);
    h.clock.advance(PEER_TTL_MS + 1);
    h.tracker.sweep();
    ch.frame({ i: 301, b: body });
    const refused = await ch.next();
    expect([refused.i, refused.s]).toEqual([301, 401]);
    await ch.closed;
  });

  it("closes a refused upgrade's connection even when its client keeps its end open; serves another upgrade as a plain request", async () => {
    const h = await harness();
    const token = await h.register('p1');
    const { connect } = await import('node:net');
    const held: Array<import('node:net').Socket> = [];
    /** The answer's first bytes; the client never closes its end (allowHalfOpen). */
    const raw = (head: string): Promise<string> =>
      new Promise((resolve) => {
        const s = connect({ host: '127.0.0.1', port: h.port, allowHalfOpen: true }, () => s.write(head));
        held.push(s);
        let text = '';
        s.on('data', (c: Buffer) => (text += c.toString()));
        s.on('error', () => {});
        s.on('end', () => resolve(text));
      });
    const serverConnections = (): Promise<number> => new Promise((resolve, reject) => h.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    const refused = await raw('POST /api/v1/syncs/channel HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: pollen-syncs/1\r\nauthorization: Bearer nope\r\ncontent-length: 0\r\n\r\n');
    expect(refused).toMatch(/^HTTP\/1\.1 401 /);
    // Another protocol's upgrade gets what the same request without it gets, and its connection closes after.
    const plain = await h.app.inject({ method: 'POST', url: '/api/v1/peers/self/heartbeat', headers: { authorization: `Bearer ${token}` } });
    const h2c = await raw(`POST /api/v1/peers/self/heartbeat HTTP/1.1\r\nhost: x\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAAP__\r\nauthorization: Bearer ${token}\r\ncontent-length: 0\r\n\r\n`);
    expect(h2c.split(' ')[1]).toBe(String(plain.statusCode));
    expect(h2c).toContain(plain.body);
    // The server lets go of both though neither client closed its end.
    const deadline = Date.now() + 5_000;
    while ((await serverConnections()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await serverConnections()).toBe(0);
    for (const s of held) s.destroy();
  });

  it('keeps at most CHANNELS_PER_PEER channels of one peer: a newer one closes the oldest, the others go on', async () => {
    const h = await harness();
    const token = await h.register('p1');
    const opened: RawChannel[] = [];
    for (let k = 0; k <= CHANNELS_PER_PEER; k++) opened.push(await channel(h.port, token));
    await opened[0]!.closed;
    const body = { syncs: [{ digest: DIGEST, have: [], wantSeed: 0, badParents: [] }] };
    for (const [k, ch] of opened.slice(1).entries()) {
      ch.frame({ i: k, b: body });
      expect((await ch.next()).s).toBe(200);
      ch.destroy();
    }
  });

  it("is what the peer's client syncs on; a dropped peer reads as not registered, as over HTTP; closing the app fails the channel's calls, not the process", async () => {
    const h = await harness();
    const client = new SupernodeClient({}, { urls: [h.url], timeoutMs: 5_000 });
    clients.push(client);
    await client.register(h.url, { peerId: 'p2', wireAddr: '127.0.0.1:4001', uploadSlots: 4, holdings: [] });
    await client.createTask(h.url, { digest: DIGEST, upstream: { registry: 'registry.test', name: 'app' } });
    const body = { have: [0], wantSeed: 1, badParents: [], knownHashes: 0 };
    const answer = await client.sync(h.url, DIGEST, body);
    expect(answer.hashes.length).toBeGreaterThan(0);
    expect(client.syncBatches.channel).toBe(1);
    h.clock.advance(PEER_TTL_MS + 1);
    h.tracker.sweep();
    await expect(client.sync(h.url, DIGEST, body)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    await client.register(h.url, { peerId: 'p2', wireAddr: '127.0.0.1:4001', uploadSlots: 4, holdings: [] });
    await client.createTask(h.url, { digest: DIGEST, upstream: { registry: 'registry.test', name: 'app' } });
    expect((await client.sync(h.url, DIGEST, body)).hashes.length).toBeGreaterThan(0);
    // The refusal was an answer on the channel too.
    expect(client.syncBatches).toEqual({ channel: 3, http: 0 });
    await h.app.close();
    await expect(client.sync(h.url, DIGEST, body)).rejects.toMatchObject({ code: 'ERR_SUPERNODE_UNAVAILABLE' });
  });

  it("names its tasks by short name to this supernode, which reads them as the digest; one the supernode cannot tell goes by digest from then on", async () => {
    const h = await harness();
    // Over HTTP (an injected dispatcher has no channel), to see each batch as sent.
    const sent: Array<Record<string, unknown>> = [];
    const dispatcher = new Agent().compose((dispatch) => (opts, handler) => {
      if (opts.path === '/api/v1/syncs') sent.push(...(JSON.parse(String(opts.body)) as { syncs: Array<Record<string, unknown>> }).syncs);
      return dispatch(opts, handler);
    });
    const client = new SupernodeClient({ dispatcher }, { urls: [h.url], timeoutMs: 5_000 });
    clients.push(client);
    await client.register(h.url, { peerId: 'p3', wireAddr: '127.0.0.1:4002', uploadSlots: 4, holdings: [] });
    await client.createTask(h.url, { digest: DIGEST, upstream: { registry: 'registry.test', name: 'app' } });
    const body = { have: [0, 1], wantSeed: 1, badParents: [], knownHashes: 0 };
    expect((await client.sync(h.url, DIGEST, body)).hashes.length).toBeGreaterThan(0);
    expect(sent).toEqual([{ task: taskName(DIGEST), havePacked: packIndexes([0, 1]), wantSeed: 1, knownHashes: 0 }]);
    // Its haves counted against the task the name stands for.
    expect(h.scheduler.taskViews().next().value?.holders.get('p3')?.has(1)).toBe(true);
    // A second task of the peer's with the same name: the supernode refuses the name, and the
    // client names the task by digest from then on.
    h.scheduler.join(`sha256:${DIGEST.slice(7, 23)}${'0'.repeat(48)}` as Digest, 4, h.tracker.get('p3')!);
    await expect(client.sync(h.url, DIGEST, body)).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    expect((await client.sync(h.url, DIGEST, body)).hashes.length).toBeGreaterThan(0);
    expect(sent.slice(1)).toEqual([expect.objectContaining({ task: taskName(DIGEST) }), expect.objectContaining({ digest: DIGEST, terse: true, packParents: true })]);
  });
});
