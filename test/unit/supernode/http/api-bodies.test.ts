// Property tests of what peers feed the supernode's cluster API: whatever JSON arrives, the routes
// (the production assembly, through fastify's inject) answer 2xx or 4xx with the OCI error body and
// never throw (no 500); nothing reaches a peer route without that peer's token, whatever the path's
// spelling; one peer's entries never break another peer's sync.
import { pooledRangeBody } from '../../../../src/pooled-body.ts';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { sha256Digest, type Digest } from '../../../../src/digest.ts';
import { PollenError } from '../../../../src/errors.ts';
import { layoutFor, pieceRange, SMALL_PIECE_BYTES } from '../../../../src/p2p/metainfo.ts';
import { splitHostPort } from '../../../../src/config.ts';
import type { SyncResponse } from '../../../../src/p2p/supernode-api.ts';
import { packIndexes, taskName } from '../../../../src/p2p/sync-answer.ts';
import { createClusterApp } from '../../../../supernode/http/apps.ts';
import { PeerRequestBudget } from '../../../../supernode/http/peer-request-budget.ts';
import type { SeedPort } from '../../../../supernode/p2p/routes-p2p.ts';
import { Scheduler } from '../../../../supernode/p2p/scheduler.ts';
import type { SeedTask } from '../../../../supernode/p2p/seed.ts';
import { Tracker } from '../../../../supernode/p2p/tracker.ts';

const DIGEST = sha256Digest('blob');
const RUNS = 150;

/** A seed that knows one 5 MiB blob, complete, creates any other task on demand, and admits every task's peer. */
function fakeSeed(): SeedPort & { ensured: number; tasks: Map<Digest, SeedTask> } {
  const tasks = new Map<Digest, SeedTask>();
  const make = (d: Digest): SeedTask => {
    const meta = layoutFor(d, 5 << 20);
    return { meta: { ...meta, hashes: meta.hashes.map((_, i) => `${i}`.padStart(64, '0')) }, state: { name: 'complete' } };
  };
  tasks.set(DIGEST, make(DIGEST));
  const admitted = new Set<string>();
  const seed = {
    ensured: 0,
    tasks,
    get: (d: Digest) => tasks.get(d),
    async openTask(req: { peerId: string; digest: Digest }) {
      seed.ensured++;
      let t = tasks.get(req.digest);
      if (!t) tasks.set(req.digest, (t = make(req.digest)));
      admitted.add(`${req.peerId} ${req.digest}`);
      return t;
    },
    isAdmitted: (peerId: string, d: Digest) => admitted.has(`${peerId} ${d}`),
    served: () => {},
    async readPiece(_peerId: string, d: Digest, index: number) {
      const t = tasks.get(d);
      if (!t || index >= t.meta.pieceCount) throw new PollenError('ERR_NOT_FOUND', 'no such piece');
      const { length } = pieceRange(t.meta.size, t.meta.pieceSize, index);
      return { length, body: pooledRangeBody(async (target) => void target.fill(0x78), { start: 0, end: length - 1 }), hash: () => t.meta.hashes[index] ?? undefined };
    },
  };
  return seed as unknown as SeedPort & { ensured: number; tasks: Map<Digest, SeedTask> };
}

interface Harness {
  app: FastifyInstance;
  clock: ManualClock;
  tracker: Tracker;
  scheduler: Scheduler;
  seed: SeedPort & { ensured: number; tasks: Map<Digest, SeedTask> };
  work: string[];
  register(peerId: string, wireAddr?: string, extra?: object): Promise<string>;
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

/** The cluster app on a manual clock; with `perSecond`, each peer's calls are metered (see peer-request-budget.ts). */
async function harness(perSecond?: number): Promise<Harness> {
  const clock = new ManualClock(0);
  // Two parents per sync (the default is one): the drop case below needs both holders offered at once.
  const scheduler = new Scheduler({ clock }, { maxParents: 2 });
  const tracker = new Tracker({ clock, onDrop: (p) => scheduler.dropPeer(p) });
  const seed = fakeSeed();
  const work: string[] = [];
  const jobs = { work: (peerId: string) => (work.push(peerId), { work: [], pollMs: 1_000 }) };
  const peerBudget = perSecond === undefined ? undefined : new PeerRequestBudget({ clock }, { perSecond });
  const app = createClusterApp(pino({ level: 'silent' }), { tracker, scheduler, seed, jobs, ...(peerBudget ? { peerBudget } : {}) }, { secret: undefined });
  apps.push(app);
  await app.ready();
  return {
    app, clock, tracker, scheduler, seed, work,
    async register(peerId, wireAddr = '127.0.0.1:4000', extra = {}) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/peers', payload: { peerId, wireAddr, uploadSlots: 4, ...extra } });
      expect(res.statusCode, res.body).toBe(200);
      return (res.json() as { token: string }).token;
    },
  };
}

function expectOciError(body: string): void {
  const parsed = JSON.parse(body) as { errors: Array<{ code: string; message: string; detail: { pollenCode: string } }> };
  expect(parsed.errors).toHaveLength(1);
  expect(typeof parsed.errors[0]!.code).toBe('string');
  expect(parsed.errors[0]!.detail.pollenCode).toMatch(/^ERR_/);
}

const peerId = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/), fc.string({ maxLength: 200 }));
const digestish = fc.oneof(fc.constant(DIGEST), fc.stringMatching(/^sha256:[a-f0-9]{64}$/), fc.string({ maxLength: 80 }));
const anyJson = fc.jsonValue({ maxDepth: 3 });
const taskish = fc.oneof(fc.constant(taskName(DIGEST)), fc.stringMatching(/^[a-f0-9]{16}$/), fc.string({ maxLength: 20 }));
/** A value of about the right type, or anything at all. */
const field = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: anyJson });
const ints = fc.array(fc.oneof(fc.integer({ min: -5, max: 1_200 }), fc.double()), { maxLength: 20 });

const registerBody = fc.oneof(
  anyJson,
  fc.record(
    {
      peerId: field(peerId),
      wireAddr: field(fc.oneof(fc.constantFrom('127.0.0.1:1', '[::1]:65002', 'host.example:80', 'http://x:1/', 'a@b:1', 'x:0', 'x:99999', '1.2.3:4', ':1', 'x:'), fc.string({ maxLength: 40 }))),
      uploadSlots: field(fc.integer({ min: -3, max: 20_000 })),
      holdings: field(fc.array(fc.record({ digest: field(digestish), pieces: field(fc.oneof(fc.base64String({ maxLength: 200 }), fc.string({ maxLength: 200 }))) }, { requiredKeys: [] }), { maxLength: 5 })),
    },
    { requiredKeys: [] },
  ),
);

const syncBody = fc.oneof(
  anyJson,
  fc.record(
    {
      have: field(ints),
      havePacked: field(fc.oneof(fc.base64String({ maxLength: 200 }), fc.string({ maxLength: 20 }))),
      wantSeed: field(fc.integer({ min: -2, max: 100 })),
      badParents: field(fc.array(peerId, { maxLength: 70 })),
      corruptParents: field(fc.array(peerId, { maxLength: 70 })),
      starved: field(fc.boolean()),
      declined: field(ints),
      knownHashes: field(fc.oneof(fc.integer(), fc.double())),
      leave: field(fc.boolean()),
      terse: field(fc.boolean()),
      packParents: field(fc.boolean()),
      peerId: field(peerId),
    },
    { requiredKeys: [] },
  ),
);

const batchBody = fc.oneof(
  anyJson,
  fc.record(
    {
      // Each item names its task by digest, by short name, by both or by neither.
      syncs: field(
        fc.array(
          fc.tuple(fc.record({ digest: field(digestish), task: field(taskish) }, { requiredKeys: [] }), syncBody).map(([names, body]) => (body && typeof body === 'object' && !Array.isArray(body) ? { ...body, ...names } : body)),
          { maxLength: 20 },
        ),
      ),
      report: field(fc.record({ version: field(fc.string({ maxLength: 70 })), storeBytes: field(fc.integer({ min: -1, max: 2 ** 40 })), uploadedBytes: field(fc.double()) }, { requiredKeys: [] })),
    },
    { requiredKeys: [] },
  ),
);

const taskBody = fc.oneof(
  anyJson,
  fc.record(
    {
      digest: field(digestish),
      sizeHint: field(fc.integer({ min: -1, max: 1 << 30 })),
      upstream: field(fc.record({ baseUrl: field(fc.webUrl()), registry: field(fc.domain()), name: field(fc.string({ maxLength: 300 })), authorization: field(fc.string({ maxLength: 50 })) }, { requiredKeys: [] })),
    },
    { requiredKeys: [] },
  ),
);

const workBody = fc.oneof(
  anyJson,
  fc.record({ reports: field(fc.array(fc.record({ job: field(fc.integer({ min: -1, max: 1e6 })), digest: field(digestish), ok: field(fc.boolean()), error: field(fc.string({ maxLength: 600 })) }, { requiredKeys: [] }), { maxLength: 5 })) }, { requiredKeys: [] }),
);

describe('supernode API bodies (fast-check over fastify inject)', () => {
  it('registration: any JSON body gets 200, or a 4xx with the OCI error body; never 500', async () => {
    const h = await harness();
    await fc.assert(
      fc.asyncProperty(registerBody, async (body) => {
        const res = await h.app.inject({ method: 'POST', url: '/api/v1/peers', payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
        expect(res.statusCode).toBeLessThan(500);
        if (res.statusCode !== 200) expectOciError(res.body);
        else expect((res.json() as { token: string }).token).toMatch(/\./);
      }),
      { numRuns: RUNS },
    );
  });

  it('task, sync, batch of syncs, heartbeat, seed piece and preheat work: any JSON body with a valid token gets 2xx or 4xx with the OCI error body; never 500', async () => {
    const h = await harness();
    const token = await h.register('me');
    await h.register('other', '127.0.0.2:4000');
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const routes: Array<[string, fc.Arbitrary<unknown>, (b: unknown) => string]> = [
      ['POST', taskBody, () => '/api/v1/tasks'],
      ['POST', syncBody, () => `/api/v1/tasks/${DIGEST}/sync`],
      ['POST', batchBody, () => '/api/v1/syncs'],
      ['POST', anyJson, () => '/api/v1/peers/self/heartbeat'],
      ['POST', workBody, () => '/api/v1/peers/self/preheat'],
    ];
    // Join the task first so that syncs reach the scheduler too.
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: auth, payload: { digest: DIGEST, upstream: { registry: 'r.example', name: 'a/b' } } })).statusCode).toBe(200);
    for (const [method, body, url] of routes) {
      await fc.assert(
        fc.asyncProperty(body, async (b) => {
          const res = await h.app.inject({ method: method as 'POST', url: url(b), headers: auth, payload: JSON.stringify(b) });
          expect(res.statusCode, `${url(b)} ${res.body}`).toBeLessThan(500);
          if (res.statusCode >= 400) expectOciError(res.body);
        }),
        { numRuns: RUNS },
      );
    }
    await fc.assert(
      fc.asyncProperty(digestish, fc.oneof(fc.nat(), fc.string({ maxLength: 10 })), async (d, i) => {
        const res = await h.app.inject({ method: 'GET', url: `/api/v1/seed/${encodeURIComponent(d)}/pieces/${encodeURIComponent(String(i))}`, headers: auth });
        expect(res.statusCode).toBeLessThan(500);
        if (res.statusCode >= 400) expectOciError(res.body);
      }),
      { numRuns: RUNS },
    );
    // The preheat work asked for was always the caller's.
    expect(new Set(h.work)).toEqual(new Set(['me']));
  });

  it('a heartbeat keeps what the peer reports for the status page, drops fields it does not know, and accepts an empty body', async () => {
    const h = await harness();
    const token = await h.register('reporter');
    const beat = (payload: object) => h.app.inject({ method: 'POST', url: '/api/v1/peers/self/heartbeat', headers: { authorization: `Bearer ${token}` }, payload });
    expect((await beat({})).statusCode).toBe(200);
    expect(h.tracker.get('reporter')?.report).toBeUndefined();
    expect((await beat({ version: '0.1.0', storeBytes: 10, uploadedBytes: 5, downloadedBytes: 7, secretSauce: 'x' })).statusCode).toBe(200);
    expect(h.tracker.get('reporter')?.report).toEqual({ version: '0.1.0', storeBytes: 10, uploadedBytes: 5, downloadedBytes: 7 });
    const bad = await beat({ version: '<script>', storeBytes: -1 });
    expect(bad.statusCode).toBe(400);
    expectOciError(bad.body);
  });

  it('a batch of syncs with a report is the peer\'s heartbeat: it keeps the report, renews the peer and says so; without one it says nothing', async () => {
    const h = await harness();
    const token = await h.register('syncer');
    await h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: { authorization: `Bearer ${token}` }, payload: { digest: DIGEST } });
    const batch = (payload: object) => h.app.inject({ method: 'POST', url: '/api/v1/syncs', headers: { authorization: `Bearer ${token}` }, payload });
    const sync = { digest: DIGEST, have: [], wantSeed: 0, badParents: [] };
    h.clock.advance(15_000);
    const plain = await batch({ syncs: [sync] });
    expect(plain.statusCode).toBe(200);
    expect(plain.json()).not.toHaveProperty('reported');
    expect(h.tracker.get('syncer')?.lastSeen).toBe(0);
    const reported = await batch({ syncs: [sync], report: { version: '0.2.0', uploadedBytes: 9, secretSauce: 'x' } });
    expect(reported.statusCode).toBe(200);
    expect(reported.json()).toMatchObject({ reported: true });
    expect(h.tracker.get('syncer')?.report).toEqual({ version: '0.2.0', uploadedBytes: 9 });
    expect(h.tracker.get('syncer')?.lastSeen).toBe(15_000);
    const bad = await batch({ syncs: [sync], report: { storeBytes: -1 } });
    expect(bad.statusCode).toBe(400);
    expectOciError(bad.body);
  });

  it('a batch syncs each task once: a repeat, by digest or by its short name, is refused as that item alone and schedules nothing', async () => {
    const h = await harness();
    const token = await h.register('repeater');
    const created = await h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: { authorization: `Bearer ${token}` }, payload: { digest: DIGEST, upstream: { registry: 'r.example', name: 'a/b' } } });
    expect(created.statusCode).toBe(200);
    const batch = (payload: object) => h.app.inject({ method: 'POST', url: '/api/v1/syncs', headers: { authorization: `Bearer ${token}` }, payload });
    const sync = { digest: DIGEST, have: [], wantSeed: 0, badParents: [] };
    const schedule = vi.spyOn(h.scheduler, 'schedule');
    const twice = await batch({ syncs: [sync, sync, { task: taskName(DIGEST) }] });
    expect(twice.statusCode).toBe(200);
    const items = twice.json().syncs as Array<{ answer?: unknown; status?: number; error?: string }>;
    expect(items).toHaveLength(3);
    expect(items[0], JSON.stringify(items[0])).toHaveProperty('answer');
    for (const repeat of items.slice(1)) {
      expect(repeat.status).toBe(400);
      expectOciError(JSON.stringify(repeat.error));
    }
    expect(schedule).toHaveBeenCalledTimes(1);
    // The next batch syncs it again.
    const again = await batch({ syncs: [sync] });
    expect(again.json().syncs[0]).toHaveProperty('answer');
  });

  it('no spelling of a peer route reaches it without the peer token (or with a wrong one): 401, OCI body, no state change', async () => {
    const h = await harness();
    const token = await h.register('victim');
    const targets = ['/api/v1/peers/self/heartbeat', '/api/v1/tasks', `/api/v1/tasks/${DIGEST}/sync`, `/api/v1/tasks/${DIGEST}/drop`, `/api/v1/seed/${DIGEST}/pieces/0`, '/api/v1/peers/self/preheat', '/api/v1/peers/victim/heartbeat', '/api/v1/peers/victim/preheat'];
    const spell = fc.constantFrom<(p: string) => string>(
      (p) => p,
      (p) => p.replace('/api', '/%61pi'),
      (p) => p.replace('v1', '%76%31'),
      (p) => p.toUpperCase(),
      (p) => `/${p}`,
      (p) => p.replace('/v1/', '/v1/../v1/'),
      (p) => p.replace('/v1/', '/./v1/'),
      (p) => `${p}/`,
      (p) => p.replace(/\//g, '%2f'),
      (p) => `${p}?peerId=victim`,
      (p) => p.replace('/api/v1', '/api/v1;x'),
    );
    const creds = fc.constantFrom<Record<string, string>>({}, { authorization: 'Bearer victim.AAAA' }, { authorization: `Bearer ${token}x` }, { authorization: token }, { 'x-pollen-cluster': 'anything' }, { authorization: `Basic ${Buffer.from(`victim:${token}`).toString('base64')}` });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...targets), spell, creds, fc.constantFrom('GET', 'POST'), async (target, how, headers, method) => {
        const ensured = h.seed.ensured;
        const res = await h.app.inject({ method: method as 'GET' | 'POST', url: how(target), headers: { ...headers, 'content-type': 'application/json' }, payload: method === 'POST' ? '{"digest":"' + DIGEST + '","upstream":{"registry":"r.example","name":"a/b"}}' : undefined });
        expect([401, 403]).toContain(res.statusCode);
        expectOciError(res.body);
        expect(h.seed.ensured).toBe(ensured);
        expect(h.work).toEqual([]);
      }),
      { numRuns: 300 },
    );
    expect(h.tracker.size).toBe(1);
  });

  it("one peer's odd but accepted registration never breaks another peer's sync, and every parent it is given has a dialable address", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(registerBody, { maxLength: 6 }), async (bodies) => {
        const h = await harness();
        const token = await h.register('honest');
        const auth = { authorization: `Bearer ${token}` };
        await h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: auth, payload: { digest: DIGEST, upstream: { registry: 'r.example', name: 'a/b' } } });
        for (const b of bodies) {
          const withHolding = typeof b === 'object' && b !== null && !Array.isArray(b) ? { ...b, holdings: [{ digest: DIGEST, pieces: 'AAAA' }, ...(Array.isArray((b as { holdings?: unknown }).holdings) ? (b as { holdings: unknown[] }).holdings : [])] } : b;
          await h.app.inject({ method: 'POST', url: '/api/v1/peers', payload: JSON.stringify(withHolding), headers: { 'content-type': 'application/json' } });
        }
        const res = await h.app.inject({ method: 'POST', url: `/api/v1/tasks/${DIGEST}/sync`, headers: auth, payload: { have: [], wantSeed: 2, badParents: [] } });
        expect(res.statusCode, res.body).toBe(200);
        for (const p of (res.json() as SyncResponse).parents) {
          const { host, port } = splitHostPort(p.wireAddr);
          expect(host.length).toBeGreaterThan(0);
          expect(Number.isInteger(port) && port > 0 && port < 65_536).toBe(true);
        }
        await h.app.close();
      }),
      { numRuns: 40 },
    );
  });

  it('a member registering from 10.0.0.8 cannot name a third party as its wire: another IP, or a DNS name that resolves elsewhere (system resolver), is refused; its own IP is taken', async () => {
    const h = await harness();
    const from = (wireAddr: string, id: string) => h.app.inject({ method: 'POST', url: '/api/v1/peers', remoteAddress: '10.0.0.8', payload: { peerId: id, wireAddr, uploadSlots: 4 } });
    for (const [wireAddr, why] of [['10.0.0.9:6379', /is not the address this peer registers from/], ['localhost:6379', /resolves to .*not to the address this peer registers from \(10\.0\.0\.8\)/]] as const) {
      const res = await from(wireAddr, 'squatter');
      expect(res.statusCode, wireAddr).toBe(400);
      expectOciError(res.body);
      expect(JSON.parse(res.body).errors[0].message).toMatch(why);
    }
    expect(h.tracker.size).toBe(0);
    expect((await from('10.0.0.8:65002', 'honest')).statusCode).toBe(200);
    expect(h.tracker.size).toBe(1);
  });

  it('a peer whose store evicted a blob (drop) stops being offered as its parent; only the token\'s own peer is dropped', async () => {
    const h = await harness();
    const auth = async (peerId: string, addr: string) => ({ authorization: `Bearer ${await h.register(peerId, addr)}`, 'content-type': 'application/json' });
    const holder = await auth('holder', '127.0.0.2:4000');
    const other = await auth('other', '127.0.0.3:4000');
    const child = await auth('child', '127.0.0.4:4000');
    const task = { digest: DIGEST, upstream: { registry: 'r.example', name: 'a/b' } };
    const pieceCount = layoutFor(DIGEST, 5 << 20).pieceCount;
    const all = Array.from({ length: pieceCount }, (_, i) => i);
    for (const a of [holder, other, child]) expect((await h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: a, payload: task })).statusCode).toBe(200);
    for (const a of [holder, other]) await h.app.inject({ method: 'POST', url: `/api/v1/tasks/${DIGEST}/sync`, headers: a, payload: { have: all, wantSeed: 0, badParents: [] } });
    const parents = async (): Promise<string[]> => {
      const res = await h.app.inject({ method: 'POST', url: `/api/v1/tasks/${DIGEST}/sync`, headers: child, payload: { have: [], wantSeed: 0, badParents: [] } });
      return (JSON.parse(res.body) as SyncResponse).parents.map((p) => p.peerId).sort();
    };
    expect(await parents()).toEqual(['holder', 'other']);
    expect((await h.app.inject({ method: 'POST', url: `/api/v1/tasks/${DIGEST}/drop`, headers: holder, payload: {} })).statusCode).toBe(200);
    expect(await parents()).toEqual(['other']);
  });

  it('the registration names the sync fields it reads; packed haves count as the list does; a packing that is not canonical is refused and nothing of its sync taken', async () => {
    const h = await harness();
    const registered = await h.app.inject({ method: 'POST', url: '/api/v1/peers', payload: { peerId: 'packer', wireAddr: '127.0.0.2:4000', uploadSlots: 4 } });
    expect(registered.json()).toMatchObject({ syncFields: ['havePacked', 'task', 'reportChanges'] });
    const packer = { authorization: `Bearer ${(registered.json() as { token: string }).token}`, 'content-type': 'application/json' };
    const child = { authorization: `Bearer ${await h.register('child', '127.0.0.3:4000')}`, 'content-type': 'application/json' };
    const task = { digest: DIGEST, upstream: { registry: 'r.example', name: 'a/b' } };
    for (const a of [packer, child]) expect((await h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: a, payload: task })).statusCode).toBe(200);
    const sync = (headers: Record<string, string>, payload: object) => h.app.inject({ method: 'POST', url: `/api/v1/tasks/${DIGEST}/sync`, headers, payload });
    // A packing whose spare bits are set ('AB==' is 0x00 written otherwise): refused, and its list not taken either.
    const bad = await sync(packer, { havePacked: 'AB==', have: [1], wantSeed: 0 });
    expect(bad.statusCode).toBe(400);
    expectOciError(bad.body);
    expect((await sync(packer, { havePacked: packIndexes([0, 2]), have: [4], wantSeed: 0 })).statusCode).toBe(200);
    const counts = (JSON.parse((await sync(child, { have: [], wantSeed: 0 })).body) as SyncResponse).availability;
    expect(counts.slice(0, 6)).toEqual([1, 0, 1, 0, 1, 0]);
  });

  it("a peer calling faster than its allowance gets 429 with the OCI body and Retry-After; other peers and the seed's pieces are not held back", async () => {
    const h = await harness(10);
    const flooder = { authorization: `Bearer ${await h.register('flooder')}` };
    const other = { authorization: `Bearer ${await h.register('other')}` };
    const beat = (headers: Record<string, string>) => h.app.inject({ method: 'POST', url: '/api/v1/peers/self/heartbeat', headers, payload: {} });
    const codes: number[] = [];
    for (let i = 0; i < 300; i++) codes.push((await beat(flooder)).statusCode);
    // The burst (256 calls) at one instant, then refusals.
    expect(codes.filter((c) => c === 200)).toHaveLength(256);
    expect(codes.slice(256).every((c) => c === 429)).toBe(true);
    const refused = await beat(flooder);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expectOciError(refused.body);
    expect(refused.json()).toMatchObject({ errors: [{ code: 'TOOMANYREQUESTS', detail: { pollenCode: 'ERR_TOO_MANY_REQUESTS' } }] });
    expect((await beat(other)).statusCode).toBe(200);
    await h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: other, payload: { digest: DIGEST, size: 5 << 20 } });
    const piece = await h.app.inject({ method: 'GET', url: `/api/v1/seed/${DIGEST}/pieces/0`, headers: flooder });
    expect(piece.statusCode).not.toBe(429);
    // A second refills ten calls, no more (the piece was on no lease of the flooder's: it paid nothing).
    h.clock.advance(1_000);
    const after: number[] = [];
    for (let i = 0; i < 12; i++) after.push((await beat(flooder)).statusCode);
    expect(after.filter((c) => c === 200)).toHaveLength(10);
  });

  it('a seed piece sent whole on a lease pays for the call that follows it, once a lease (a fast seed line syncs once a piece)', async () => {
    const h = await harness(10);
    const auth = { authorization: `Bearer ${await h.register('fetcher')}` };
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: auth, payload: { digest: DIGEST, upstream: { registry: 'r.example', name: 'a/b' } } })).statusCode).toBe(200);
    const sync = await h.app.inject({ method: 'POST', url: `/api/v1/tasks/${DIGEST}/sync`, headers: auth, payload: { have: [], wantSeed: 2, badParents: [] } });
    const grants = (sync.json() as SyncResponse).seedGrants;
    expect(grants).toHaveLength(2);
    const beat = () => h.app.inject({ method: 'POST', url: '/api/v1/peers/self/heartbeat', headers: auth, payload: {} });
    while ((await beat()).statusCode === 200);
    const fetch = async (index: number): Promise<void> => {
      const piece = await h.app.inject({ method: 'GET', url: `/api/v1/seed/${DIGEST}/pieces/${index}`, headers: auth });
      expect(piece.statusCode).toBe(200);
      expect(piece.rawPayload.length).toBe(512 * 1024);
    };
    for (const index of grants) {
      await fetch(index);
      // One piece, one call: the next is refused again.
      expect((await beat()).statusCode).toBe(200);
      expect((await beat()).statusCode).toBe(429);
      // The same piece again, one on no lease of its own, or a HEAD of it (no body sent), pays for nothing.
      await fetch(index);
      await fetch(9);
      expect((await h.app.inject({ method: 'HEAD', url: `/api/v1/seed/${DIGEST}/pieces/${index}`, headers: auth })).statusCode).not.toBe(200);
      expect((await beat()).statusCode).toBe(429);
    }
  });

  it('a blob the seed began again in the other layout: a holder of the old task must create it again, and then syncs in the new one', async () => {
    const h = await harness();
    const auth = { authorization: `Bearer ${await h.register('holder')}` };
    const create = () => h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: auth, payload: { digest: DIGEST, upstream: { registry: 'r.example', name: 'a/b' } } });
    const sync = () => h.app.inject({ method: 'POST', url: `/api/v1/tasks/${DIGEST}/sync`, headers: auth, payload: { have: [0], wantSeed: 0, badParents: [] } });
    expect((await create()).json()).toMatchObject({ pieceCount: 10 });
    expect((await sync()).statusCode).toBe(200);
    // Evicted and begun again (for another peer) in the small layout's pieces.
    const small = layoutFor(DIGEST, 5 << 20, SMALL_PIECE_BYTES);
    h.seed.tasks.set(DIGEST, { meta: { ...small, hashes: small.hashes.map((_, i) => `${i}`.padStart(64, '1')) }, state: { name: 'complete' } });
    const refused = await sync();
    expect(refused.statusCode).toBe(404);
    expect(refused.json()).toMatchObject({ errors: [{ detail: { pollenCode: 'ERR_NOT_FOUND' } }] });
    expect((await create()).json()).toMatchObject({ pieceCount: (5 << 20) / SMALL_PIECE_BYTES, pieceSize: SMALL_PIECE_BYTES });
    const answer = await sync();
    expect(answer.statusCode).toBe(200);
    expect((answer.json() as SyncResponse).hashes[0]).toBe('0'.padStart(64, '1'));
  });
});
