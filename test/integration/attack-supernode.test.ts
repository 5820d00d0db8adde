// Attacks on the supernode, against a real `pollen supernode` process with a strong cluster secret
// and an admin token, a real registry behind its seed, and requests written byte for byte over
// TLS-PSK (test/helpers/psk-http.ts) so that odd path spellings reach the server as written.
// Issue 10, property 3: deny by default on the decoded path, each peer its own credential,
// validated addresses; property 7: without the key there is no connection at all.
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pskClientOptions } from '../../src/cluster-tls.ts';
import type { Digest } from '../../src/digest.ts';
import { unpackHashes } from '../../src/p2p/metainfo.ts';
import { packIndexes, taskName } from '../../src/p2p/sync-answer.ts';
import type { SyncResponse, TaskAnswer } from '../../src/p2p/supernode-api.ts';
import { JobsClient } from '../../src/preheat/jobs-client.ts';
import { EARLY_GRACE_MS } from '../../supernode/p2p/sync-pacer.ts';
import type { WorkResponse } from '../../src/preheat/jobs-api.ts';
import { pushRandomImage, type ImageFixture } from '../helpers/p2p-cluster.ts';
import { PollenProcess } from '../helpers/pollen.ts';
import { pskChannel, pskRequest, type RawAnswer, type RawChannel } from '../helpers/psk-http.ts';
import { SeedChannels } from '../../peer/p2p/seed-channel.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { waitFor } from '../helpers/tools.ts';

const SECRET = 'attack-suite-Zq8vN3kP0sLw7Rt2Yx5Hc9Bm4Jd6Gf1A';
const ADMIN_TOKEN = 'attack-suite-admin-token';
const MiB = 1 << 20;

let registry: TestRegistry;
let image: ImageFixture;
let sn: PollenProcess;
let port: number;
let layer: Digest;

type ApiCall = (req: { method: string; path: string; token?: string; headers?: Record<string, string>; body?: unknown }) => Promise<RawAnswer>;

/** Calls on the cluster API of the supernode listening on port `p` (a test may start one of its own). */
const callOn =
  (p: number): ApiCall =>
  (req) =>
    pskRequest(p, SECRET, { ...req, headers: { ...(req.token ? { authorization: `Bearer ${req.token}` } : {}), ...req.headers } });
const call: ApiCall = (req) => callOn(port)(req);

/** Where the seed fetches the layer (the one place that knows the task body's upstream shape). */
function upstream(): Record<string, string> {
  return { registry: registry.host, name: 'attack/app' };
}

async function register(peerId: string, wireAddr = '127.0.0.1:40000', token?: string, on: ApiCall = call): Promise<RawAnswer> {
  return on({ method: 'POST', path: '/api/v1/peers', token, body: { peerId, wireAddr, uploadSlots: 4, holdings: [] } });
}

async function registered(peerId: string, wireAddr?: string, on: ApiCall = call): Promise<string> {
  const res = await register(peerId, wireAddr, undefined, on);
  expect(res.status, res.body).toBe(200);
  return (JSON.parse(res.body) as { token: string }).token;
}

function expectRefusal(res: RawAnswer, statuses: number[] = [401]): void {
  expect(statuses, `${res.status} ${res.body}`).toContain(res.status);
  const body = JSON.parse(res.body) as { errors: Array<{ code: string; message: string; detail: { pollenCode: string } }> };
  expect(body.errors[0]!.detail.pollenCode).toMatch(/^ERR_(CLUSTER_UNAUTHORIZED|PEER_ID_TAKEN|ADMIN_UNAUTHORIZED|INVALID_REQUEST)$/);
}

async function stats(): Promise<{ peers: number; seed: { registryBytes: number; servedBytes: number }; scheduler: Record<string, number> }> {
  return (await (await fetch(`${sn.adminUrl}/api/v1/stats`)).json()) as never;
}

beforeAll(async () => {
  registry = await TestRegistry.start();
  image = await pushRandomImage(registry, 'attack/app', [5 * MiB]);
  layer = image.layers[0]!.descriptor.digest as Digest;
  sn = await PollenProcess.spawn('supernode', ['--secret', SECRET, '--admin-token', ADMIN_TOKEN, '--upstream', registry.url]);
  port = Number(new URL(sn.url).port);
}, 120_000);

afterAll(async () => {
  await sn?.stop();
  await registry?.stop();
}, 60_000);

/** Spellings of one path that a prefix test on the raw URL would have got wrong. */
function spellings(path: string): string[] {
  return [
    path,
    path.replace('/api/', '/%61pi/'),
    path.replace('/api/v1/', '/api/%76%31/'),
    path.replace('/api/', '/API/'),
    `/${path}`,
    path.replace('/api/v1/', '/api/v1/../v1/'),
    path.replace('/api/v1/', '/api/./v1/'),
    path.replace('/api/v1/', '/api%2Fv1/'),
    `${path}/`,
    `${path}?peerId=victim`,
    `${path}#x`,
  ];
}

describe('the supernode cluster API under attack', () => {
  it('without the cluster key no TLS handshake completes, plain HTTP gets no answer, and nothing changes', async () => {
    const before = await stats();
    const handshake = (options: object) =>
      new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port, ...options });
        s.once('secureConnect', () => {
          s.destroy();
          resolve('connected');
        });
        s.once('error', (e) => resolve(`refused: ${e.message}`));
      });
    expect(await handshake(pskClientOptions(SECRET, 'api'))).toBe('connected');
    expect(await handshake(pskClientOptions(`${SECRET}x`, 'api'))).toMatch(/^refused/);
    expect(await handshake(pskClientOptions(SECRET, 'wire'))).toMatch(/^refused/);
    expect(await handshake({ rejectUnauthorized: false })).toMatch(/^refused/);
    expect(await handshake({ rejectUnauthorized: false, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' })).toMatch(/^refused/);
    await expect(fetch(`http://127.0.0.1:${port}/api/v1/peers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ peerId: 'x', wireAddr: '127.0.0.1:1', uploadSlots: 1 }) })).rejects.toThrow();
    await expect(pskRequest(port, `${SECRET}x`, { method: 'POST', path: '/api/v1/peers', body: { peerId: 'x', wireAddr: '127.0.0.1:1', uploadSlots: 1 } })).rejects.toThrow();
    expect(await stats()).toEqual(before);
  });

  it('every peer route, under every path spelling, refuses no token, a wrong token and a mangled one with 401 and the OCI error body, and changes nothing', async () => {
    const victim = await registered('victim');
    const task = await call({ method: 'POST', path: '/api/v1/tasks', token: victim, body: { digest: layer, upstream: upstream() } });
    expect(task.status, task.body).toBe(200);
    const before = await stats();
    const routes: Array<[string, string, unknown]> = [
      ['POST', '/api/v1/peers/self/heartbeat', {}],
      ['POST', '/api/v1/tasks', { digest: layer, upstream: upstream() }],
      ['POST', `/api/v1/tasks/${layer}/sync`, { have: [0, 1, 2, 3, 4], wantSeed: 4, corruptParents: ['victim'] }],
      ['POST', '/api/v1/syncs', { syncs: [{ digest: layer, have: [0, 1, 2, 3, 4], wantSeed: 4, corruptParents: ['victim'] }] }],
      ['GET', `/api/v1/seed/${layer}/pieces/0`, undefined],
      ['POST', '/api/v1/peers/self/preheat', { reports: [] }],
      ['POST', '/api/v1/peers/victim/heartbeat', {}],
      ['POST', '/api/v1/peers/victim/preheat', { reports: [] }],
      ['POST', '/api/v1/jobs', { type: 'preheat', args: { image: `${registry.host}/${image.ref}` } }],
      ['GET', '/api/v1/stats', undefined],
      ['GET', '/healthz', undefined],
    ];
    const wrong = ['victim.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', `${victim.slice(0, -2)}xx`, `nobody${victim.slice(victim.indexOf('.'))}`, SECRET, ADMIN_TOKEN];
    for (const [method, path, body] of routes) {
      for (const spelled of spellings(path)) {
        for (const token of [undefined, ...wrong]) {
          expectRefusal(await call({ method, path: spelled, token, body }));
        }
        expectRefusal(await call({ method, path: spelled, headers: { 'x-pollen-cluster': SECRET }, body }));
      }
    }
    // Only the registration route takes a member without a token, and only under spellings that
    // match it; a path that matches no route is refused whatever the caller holds.
    for (const spelled of ['//api/v1/peers', '/API/v1/peers', '/api/v1/peers/', '/api/v1/peers%2F', '/api%2Fv1/peers']) {
      expectRefusal(await call({ method: 'POST', path: spelled, token: victim, body: { peerId: 'intruder', wireAddr: '127.0.0.1:1', uploadSlots: 1 } }));
    }
    const after = await stats();
    expect(after.peers).toBe(before.peers);
    expect(after.scheduler).toEqual(before.scheduler);
    expect(after.seed.servedBytes).toBe(before.seed.servedBytes);
  }, 120_000);

  it('the admin listener refuses the jobs API without the admin token under every spelling, and serves no cluster route', async () => {
    const jobsPaths = ['/api/v1/jobs', '/oapi/v1/jobs', '/api/v1/jobs/1', '/oapi/v1/jobs/1'];
    for (const path of jobsPaths) {
      for (const spelled of spellings(path)) {
        for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${SECRET}` }, { authorization: ADMIN_TOKEN }] as Array<Record<string, string>>) {
          const res = await fetch(`${sn.adminUrl}${spelled}`, { headers });
          expect([401, 404], `${spelled} ${res.status}`).toContain(res.status);
          if (res.status === 404) expect(spelled).toMatch(/#/);
          else expect(((await res.json()) as { errors: unknown[] }).errors).toHaveLength(1);
        }
      }
    }
    const before = await stats();
    for (const path of ['/api/v1/peers', '/api/v1/tasks', `/api/v1/tasks/${layer}/sync`, '/api/v1/peers/self/preheat']) {
      const res = await fetch(`${sn.adminUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify({ peerId: 'sneaky', wireAddr: '127.0.0.1:1', uploadSlots: 1 }) });
      expect(res.status).toBe(401);
    }
    expect((await stats()).peers).toBe(before.peers);
    expect(await new JobsClient({ baseUrl: sn.adminUrl, token: ADMIN_TOKEN }).list()).toBeInstanceOf(Array);
  });

  it('a bogus wireAddr is refused with 400 and registers nothing', async () => {
    const before = (await stats()).peers;
    for (const bad of ['http://127.0.0.1:1/', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', 'user@127.0.0.1:1', '127.0.0.1:1/x', '0.0.0.0:1', '[::]:1', 'a b:1', '[127.0.0.1]:1', '1.2.3:1', '']) {
      const res = await register(`bogus-${before}`, bad);
      expectRefusal(res, [400]);
    }
    expect((await stats()).peers).toBe(before);
  });

  it('a batch of syncs answers each task only to a peer in it, item by item, and refuses a malformed or oversized batch whole', async () => {
    const member = await registered('batch-member');
    const outsider = await registered('batch-outsider');
    expect((await call({ method: 'POST', path: '/api/v1/tasks', token: member, body: { digest: layer, upstream: upstream() } })).status).toBe(200);
    // A creation's withoutHashes is a flag, or the creation is refused.
    expectRefusal(await call({ method: 'POST', path: '/api/v1/tasks', token: member, body: { digest: layer, upstream: upstream(), withoutHashes: 'yes' } }), [400]);
    const before = await stats();
    const other = `sha256:${'1'.repeat(64)}`;
    const item = (digest: string) => ({ digest, have: [0, 1, 2], wantSeed: 4, badParents: [], corruptParents: ['batch-member'] });
    // The outsider never joined the task: each item is refused as the per-task route would refuse it,
    // and nothing it claimed or reported counts.
    const res = await call({ method: 'POST', path: '/api/v1/syncs', token: outsider, body: { syncs: [item(layer), item(other)] } });
    expect(res.status, res.body).toBe(200);
    const answers = (JSON.parse(res.body) as { syncs: Array<{ digest: string; status?: number; error?: { errors: Array<{ detail: { pollenCode: string } }> }; answer?: unknown }> }).syncs;
    expect(answers.map((a) => [a.digest, a.status, a.error?.errors[0]?.detail.pollenCode, a.answer])).toEqual([
      [layer, 404, 'ERR_NOT_FOUND', undefined],
      [other, 404, 'ERR_NOT_FOUND', undefined],
    ]);
    expect((await stats()).scheduler).toEqual(before.scheduler);
    // The member gets its own task's answer next to a refused item.
    const mixed = JSON.parse((await call({ method: 'POST', path: '/api/v1/syncs', token: member, body: { syncs: [item(other), { digest: layer, have: [], wantSeed: 0, badParents: [] }] } })).body) as { syncs: Array<{ status?: number; answer?: SyncResponse }> };
    expect(mixed.syncs[0]!.status).toBe(404);
    expect(Array.isArray(mixed.syncs[1]!.answer?.hashes)).toBe(true);
    // Malformed or too many items: 400 for the whole request, nothing applied.
    // wantParents (how many parents the peer would dial) is a small count, or the request is refused.
    const badWants = [-1, 65, 1.5, 'all', 1e12].map((wantParents) => ({ syncs: [{ ...item(layer), wantParents }] }));
    for (const body of [{ syncs: [] }, { syncs: [{ have: [] }] }, { syncs: [{ ...item(layer), digest: '../x' }] }, { syncs: Array.from({ length: 65 }, () => item(layer)) }, { syncs: 'x' }, ...badWants, { syncs: [{ ...item(layer), terse: 'yes' }] }]) {
      expectRefusal(await call({ method: 'POST', path: '/api/v1/syncs', token: member, body }), [400]);
    }
    expect((await stats()).scheduler).toEqual(before.scheduler);
  });

  it('a batch that syncs one task many times gets one answer: every repeat, by digest or by short name, is its own 400 and schedules nothing', async () => {
    const member = await registered('batch-repeater');
    expect((await call({ method: 'POST', path: '/api/v1/tasks', token: member, body: { digest: layer, upstream: upstream() } })).status).toBe(200);
    // No seed grants asked: the layer's leases are other tests' to take.
    const item = { digest: layer, have: [], wantSeed: 0, badParents: [] };
    const syncs = [...Array.from({ length: 62 }, () => item), { task: taskName(layer) }, item];
    const res = await call({ method: 'POST', path: '/api/v1/syncs', token: member, body: { syncs } });
    expect(res.status, res.body).toBe(200);
    const answers = (JSON.parse(res.body) as { syncs: Array<{ status?: number; error?: { errors: Array<{ detail: { pollenCode: string } }> }; answer?: SyncResponse }> }).syncs;
    expect(answers).toHaveLength(64);
    expect(Array.isArray(answers[0]!.answer?.hashes)).toBe(true);
    for (const repeat of answers.slice(1)) expect([repeat.status, repeat.error?.errors[0]?.detail.pollenCode, repeat.answer]).toEqual([400, 'ERR_INVALID_REQUEST', undefined]);
    // The next batch is answered as usual.
    const again = JSON.parse((await call({ method: 'POST', path: '/api/v1/syncs', token: member, body: { syncs: [item] } })).body) as { syncs: Array<{ answer?: SyncResponse }> };
    expect(Array.isArray(again.syncs[0]!.answer?.hashes)).toBe(true);
  });

  it("one member's syncs do not hold back another's availability; packed hashes are the plain ones; a trimHashes or packHashes of the wrong type is refused whole", async () => {
    const [a, b] = [await registered('avail-a'), await registered('avail-b')];
    for (const t of [a, b]) expect((await call({ method: 'POST', path: '/api/v1/tasks', token: t, body: { digest: layer, upstream: upstream() } })).status).toBe(200);
    const sync = async (token: string, extra: object = {}): Promise<RawAnswer> => call({ method: 'POST', path: '/api/v1/syncs', token, body: { syncs: [{ digest: layer, have: [], wantSeed: 0, badParents: [], ...extra }] } });
    const availability = async (token: string): Promise<number[]> => (JSON.parse((await sync(token)).body) as { syncs: Array<{ answer: SyncResponse }> }).syncs[0]!.answer.availability as number[];
    // A gets the counts, then none within the interval however often it asks; B, on its own clock, still gets them.
    expect((await availability(a)).length).toBeGreaterThan(0);
    for (let k = 0; k < 5; k++) expect(await availability(a)).toEqual([]);
    expect((await availability(b)).length).toBeGreaterThan(0);
    const answer = async (extra: object): Promise<SyncResponse> => (JSON.parse((await sync(a, extra)).body) as { syncs: Array<{ answer: SyncResponse }> }).syncs[0]!.answer;
    await waitFor(async () => (await answer({})).hashes.every((h) => typeof h === 'string'), 'every piece hash', 30_000);
    const plain = await answer({});
    const packed = await answer({ packHashes: true });
    expect(packed.hashes).toEqual([]);
    expect(packed.hashesFrom).toBe(plain.hashesFrom);
    expect(unpackHashes(packed.hashesPacked, plain.hashes.length)).toEqual(plain.hashes);
    // Nothing left to send (the peer knows every hash, as one whose parents send piece proofs): no packing either.
    const none = await answer({ packHashes: true, knownHashes: plain.hashes.length });
    expect(none.hashes).toEqual([]);
    expect(none.hashesPacked).toBeUndefined();
    const before = await stats();
    for (const bad of ['yes', 1, null]) {
      expectRefusal(await sync(a, { trimHashes: bad, have: [0] }), [400]);
      expectRefusal(await sync(a, { packHashes: bad, have: [0] }), [400]);
    }
    expect((await stats()).scheduler).toEqual(before.scheduler);
  });

  it("packed haves count as a member's list does, only its own; a packing that is not canonical, too long or not a string takes nothing of its sync", async () => {
    const reg = await register('packed-a');
    expect(reg.status).toBe(200);
    expect((JSON.parse(reg.body) as { syncFields?: string[] }).syncFields).toEqual(['havePacked', 'task', 'reportChanges']);
    const a = (JSON.parse(reg.body) as { token: string }).token;
    const b = await registered('packed-b');
    for (const t of [a, b]) expect((await call({ method: 'POST', path: '/api/v1/tasks', token: t, body: { digest: layer, upstream: upstream() } })).status).toBe(200);
    const sync = async (token: string, extra: object): Promise<RawAnswer> => call({ method: 'POST', path: '/api/v1/syncs', token, body: { syncs: [{ digest: layer, wantSeed: 0, ...extra }] } });
    const counts = async (): Promise<number[]> => (JSON.parse((await sync(b, {})).body) as { syncs: Array<{ answer: SyncResponse }> }).syncs[0]!.answer.availability as number[];
    const before = await counts();
    expect(before.length).toBeGreaterThan(2);
    // Not canonical ('AB==' is 0x00 written otherwise): that item refused, its list (piece 1) not taken.
    const odd = JSON.parse((await sync(a, { havePacked: 'AB==', have: [1] })).body) as { syncs: Array<{ status?: number }> };
    expect(odd.syncs[0]!.status).toBe(400);
    // Longer than any blob's bitfield, or not a string: the batch refused whole.
    expectRefusal(await sync(a, { havePacked: Buffer.alloc(200).toString('base64'), have: [1] }), [400]);
    expectRefusal(await sync(a, { havePacked: 7, have: [1] }), [400]);
    expect((await sync(a, { havePacked: packIndexes([0, 2]) })).status).toBe(200);
    // B's next counts (sent every 4 s at most): pieces 0 and 2 one holder more, piece 1 as it was.
    let after: number[] = [];
    await waitFor(async () => (after = await counts()).length > 0, "B's next counts", 10_000);
    expect([after[0], after[1] ?? 0, after[2]]).toEqual([before[0]! + 1, before[1] ?? 0, before[2]! + 1]);
    // A holds nothing any more (the later cases count unheld pieces).
    expect((await call({ method: 'POST', path: `/api/v1/tasks/${layer}/drop`, token: a, body: {} })).status).toBe(200);
  });

  it("a task named by its short name is the caller's own or none: another member's task so named is unknown and takes nothing; a malformed name, or a name with a digest, refuses the batch", async () => {
    const a = await registered('named-a');
    const b = await registered('named-b');
    expect((await call({ method: 'POST', path: '/api/v1/tasks', token: a, body: { digest: layer, upstream: upstream() } })).status).toBe(200);
    const batch = (token: string, items: object[]) => call({ method: 'POST', path: '/api/v1/syncs', token, body: { syncs: items } });
    const before = await stats();
    // B never created the task: naming it (as one could who saw A's traffic, or guessed) is an unknown task.
    const theirs = await batch(b, [{ task: taskName(layer), have: [0, 1], wantSeed: 4 }]);
    expect(theirs.status, theirs.body).toBe(200);
    const item = (JSON.parse(theirs.body) as { syncs: Array<{ status?: number; error?: { errors: Array<{ detail: { pollenCode: string } }> } }> }).syncs[0]!;
    expect(item.status).toBe(404);
    expect(item.error?.errors[0]?.detail.pollenCode).toBe('ERR_NOT_FOUND');
    for (const items of [[{ task: 'XYZ' }], [{ task: taskName(layer).slice(1) }], [{ task: taskName(layer), digest: layer }], [{ task: 7 }], [{}]]) expectRefusal(await batch(b, items), [400]);
    expect((await stats()).scheduler).toEqual(before.scheduler);
    // A's own task by name: answered terse (no digest), as A would have been by digest.
    const own = JSON.parse((await batch(a, [{ task: taskName(layer), knownHashes: 1 << 20 }])).body) as { syncs: Array<Record<string, unknown>> };
    expect(own.syncs[0]).toHaveProperty('answer');
    expect(own.syncs[0]).not.toHaveProperty('digest');
    expect((await call({ method: 'POST', path: `/api/v1/tasks/${layer}/drop`, token: a, body: {} })).status).toBe(200);
    // Left (its store evicted the blob): the name is none of A's tasks any more, and takes nothing.
    const left = await stats();
    const gone = JSON.parse((await batch(a, [{ task: taskName(layer), have: [0], wantSeed: 4 }])).body) as { syncs: Array<{ status?: number }> };
    expect(gone.syncs[0]!.status).toBe(404);
    expect((await stats()).scheduler).toEqual(left.scheduler);
  });

  it("a batch of syncs carries only its caller's heartbeat report: no naming another peer, and a malformed report refuses the batch whole", async () => {
    const member = await registered('report-member', '127.0.0.1:41101');
    const victim = await registered('report-victim', '127.0.0.1:41102');
    for (const t of [member, victim]) expect((await call({ method: 'POST', path: '/api/v1/tasks', token: t, body: { digest: layer, upstream: upstream() } })).status).toBe(200);
    const peersNow = async (): Promise<Map<string, { version: string | null; storeBytes: number | null }>> => {
      const status = (await (await fetch(`${sn.adminUrl}/api/v1/status`)).json()) as { peers: { id: string; version: string | null; storeBytes: number | null }[] };
      return new Map(status.peers.map((p) => [p.id, p]));
    };
    const sync = { digest: layer, have: [], wantSeed: 0, badParents: [] };
    // The member "reports for" the victim, in the body and in the report: the report is the member's.
    const res = await call({ method: 'POST', path: '/api/v1/syncs', token: member, body: { peerId: 'report-victim', syncs: [sync], report: { version: '6.6.6', storeBytes: 123, peerId: 'report-victim' } } });
    expect(res.status, res.body).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ reported: true });
    let peers = await peersNow();
    expect(peers.get('report-member')).toMatchObject({ version: '6.6.6', storeBytes: 123 });
    expect(peers.get('report-victim')?.version ?? null).toBeNull();
    // A report outside the heartbeat's schema: 400 for the whole batch, no item applied, no report kept.
    const before = await stats();
    for (const report of [{ version: '<script>' }, { storeBytes: -1 }, { version: 'x'.repeat(65) }, 'hello', [1]]) {
      expectRefusal(await call({ method: 'POST', path: '/api/v1/syncs', token: member, body: { syncs: [{ ...sync, have: [0] }], report } }), [400]);
    }
    expect((await stats()).scheduler).toEqual(before.scheduler);
    peers = await peersNow();
    expect(peers.get('report-member')).toMatchObject({ version: '6.6.6', storeBytes: 123 });
    // Without the member's token the batch, report and all, is refused.
    expectRefusal(await call({ method: 'POST', path: '/api/v1/syncs', body: { syncs: [sync], report: { version: '7.7.7' } } }));
    expect((await peersNow()).get('report-victim')?.version ?? null).toBeNull();
  });

  it("a sync channel opens only on its one path and protocol with the peer's own token; every refusal is an OCI error body and opens nothing", async () => {
    const token = await registered('channel-opener');
    const upgrade = (extra: Record<string, string> = {}) => ({ connection: 'Upgrade', upgrade: 'pollen-syncs/1', ...extra });
    const refused = async (req: { method?: string; path: string; headers: Record<string, string> }, statuses: number[]): Promise<void> => {
      const res = await pskChannel(port, SECRET, req);
      expect('status' in res, `${req.method ?? 'POST'} ${req.path} opened a channel`).toBe(true);
      const answer = res as RawAnswer;
      expect(statuses, `${answer.status} ${answer.body}`).toContain(answer.status);
      const body = JSON.parse(answer.body) as { errors: Array<{ detail: { pollenCode: string } }> };
      expect(body.errors[0]!.detail.pollenCode).toBe(answer.status === 404 ? 'ERR_NOT_FOUND' : 'ERR_CLUSTER_UNAUTHORIZED');
    };
    for (const path of spellings('/api/v1/syncs/channel')) {
      await refused({ path, headers: upgrade() }, path === '/api/v1/syncs/channel' ? [401] : [401, 404]);
      await refused({ path, headers: upgrade({ authorization: 'Bearer not-a-token' }) }, path === '/api/v1/syncs/channel' ? [401] : [401, 404]);
      await refused({ path, headers: upgrade({ authorization: `Bearer ${token}x` }) }, path === '/api/v1/syncs/channel' ? [401] : [401, 404]);
    }
    await refused({ method: 'GET', path: '/api/v1/syncs/channel', headers: upgrade({ authorization: `Bearer ${token}` }) }, [404]);
    await refused({ path: '/api/v1/syncs/channel', headers: upgrade({ authorization: `Bearer ${token}`, upgrade: 'websocket' }) }, [404]);
    await refused({ path: '/api/v1/syncs', headers: upgrade({ authorization: `Bearer ${token}` }) }, [404]);
    const ok = await pskChannel(port, SECRET, { path: '/api/v1/syncs/channel', headers: upgrade({ authorization: `Bearer ${token}` }) });
    expect('status' in ok).toBe(false);
    (ok as RawChannel).destroy();
  });

  it("a seed channel opens only on its one path and protocol with the peer's own token; on it a member gets only the pieces of a blob the seed admitted it for (with the vouched hash list the task answers with, once the seed verified the blob), and a request that is not a request closes it", async () => {
    const token = await registered('seed-channel-member');
    const outsider = await registered('seed-channel-outsider');
    const upgrade = (extra: Record<string, string> = {}) => ({ connection: 'Upgrade', upgrade: 'pollen-seed/1', ...extra });
    for (const path of spellings('/api/v1/seed/channel')) {
      for (const authorization of [undefined, 'Bearer not-a-token', `Bearer ${token}x`]) {
        const res = await pskChannel(port, SECRET, { path, headers: upgrade(authorization ? { authorization } : {}) });
        expect('status' in res, `${path} opened a channel`).toBe(true);
        const answer = res as RawAnswer;
        expect(path === '/api/v1/seed/channel' ? [401] : [401, 404], `${answer.status} ${answer.body}`).toContain(answer.status);
        expect((JSON.parse(answer.body) as { errors: Array<{ detail: { pollenCode: string } }> }).errors[0]!.detail.pollenCode).toBe(answer.status === 404 ? 'ERR_NOT_FOUND' : 'ERR_CLUSTER_UNAUTHORIZED');
      }
    }
    // The member's task admits it for the layer; the outsider has none.
    expect((await call({ method: 'POST', path: '/api/v1/tasks', token, body: { digest: layer, upstream: upstream() } })).status).toBe(200);
    const channels = new SeedChannels({ secret: SECRET, timeoutMs: 30_000 });
    try {
      const read = async (t: string): Promise<{ status: number; bytes?: Buffer; list?: string | undefined; code?: string }> => {
        const answer = await channels.piece(sn.url, t, layer, 0, AbortSignal.timeout(30_000));
        if (!answer) throw new Error('no seed channel');
        if (!('answer' in answer)) return { status: answer.status, code: (answer.body as { errors: Array<{ detail: { pollenCode: string } }> }).errors[0]!.detail.pollenCode };
        const parts: Buffer[] = [];
        for await (const c of answer.answer.body) parts.push(c);
        return { status: 200, bytes: Buffer.concat(parts), list: answer.answer.hashList?.() };
      };
      const mine = await read(token);
      expect(mine.status).toBe(200);
      expect(mine.bytes!.equals(image.layers[0]!.blob.subarray(0, mine.bytes!.length))).toBe(true);
      // The list a piece carries is the one the task answers with once the seed verified the blob.
      let listed = mine;
      await waitFor(async () => (listed = await read(token)).list !== undefined, 'a seed piece with the hash list', 30_000);
      const task = JSON.parse((await call({ method: 'POST', path: '/api/v1/tasks', token, body: { digest: layer, upstream: upstream() } })).body) as { hashList?: string };
      expect(task.hashList).toMatch(/^[0-9a-f]{64}$/);
      expect(listed.list).toBe(task.hashList);
      const routed = await call({ method: 'GET', path: `/api/v1/seed/${layer}/pieces/0`, token });
      expect([routed.status, routed.headers['x-pollen-hash-list']]).toEqual([200, task.hashList]);
      expect(await read(outsider)).toEqual({ status: 403, code: 'ERR_SEED_NOT_ADMITTED' });
      // Nor over the route: the refusal says nothing of the blob's hashes.
      const refused = await call({ method: 'GET', path: `/api/v1/seed/${layer}/pieces/0`, token: outsider });
      expect(refused.status).toBe(403);
      expect(refused.headers['x-pollen-hash-list']).toBeUndefined();
    } finally {
      channels.close();
    }
    for (const bad of [Buffer.from([0, 1, 0, 0, 0x7b]), Buffer.from('\x00\x00\x00\x05{nope'), Buffer.from('\x00\x00\x00\x05{"x":0}')]) {
      const ch = (await pskChannel(port, SECRET, { path: '/api/v1/seed/channel', headers: upgrade({ authorization: `Bearer ${token}` }) })) as RawChannel;
      ch.write(bad);
      await ch.closed;
    }
  });

  it('a sync channel answers as POST /api/v1/syncs does (an outsider item by item, a malformed batch 400 with the channel kept), a poisoned one 400 as over HTTP, and a frame that is not a frame, not JSON or over 1 MiB closes it', async () => {
    const member = await registered('channel-member');
    const outsider = await registered('channel-outsider');
    expect((await call({ method: 'POST', path: '/api/v1/tasks', token: member, body: { digest: layer, upstream: upstream() } })).status).toBe(200);
    const open = async (token: string): Promise<RawChannel> => {
      const res = await pskChannel(port, SECRET, { path: '/api/v1/syncs/channel', headers: { connection: 'Upgrade', upgrade: 'pollen-syncs/1', authorization: `Bearer ${token}` } });
      expect('status' in res, JSON.stringify(res)).toBe(false);
      return res as RawChannel;
    };
    const before = await stats();
    const item = (digest: string) => ({ digest, have: [0, 1, 2], wantSeed: 4, badParents: [], corruptParents: ['channel-member'] });
    const out = await open(outsider);
    out.frame({ i: 1, b: { syncs: [item(layer)] } });
    const refusedItem = await out.next();
    expect(refusedItem.i).toBe(1);
    expect(refusedItem.s).toBe(200);
    expect((refusedItem.b as { syncs: Array<{ status: number; error: { errors: Array<{ detail: { pollenCode: string } }> } }> }).syncs.map((a) => [a.status, a.error.errors[0]!.detail.pollenCode])).toEqual([[404, 'ERR_NOT_FOUND']]);
    expect((await stats()).scheduler).toEqual(before.scheduler);
    out.destroy();
    const ch = await open(member);
    // A batch the route would refuse is refused with its status and error; the channel goes on.
    for (const [k, b] of [{ syncs: [] }, { syncs: 'x' }, { syncs: [{ ...item(layer), digest: '../x' }] }, { syncs: Array.from({ length: 65 }, () => item(layer)) }, { syncs: [{ ...item(layer), wantParents: -1 }] }].entries()) {
      ch.frame({ i: 10 + k, b });
      const a = await ch.next();
      expect([a.i, a.s]).toEqual([10 + k, 400]);
      expect((a.b as { errors: Array<{ detail: { pollenCode: string } }> }).errors[0]!.detail.pollenCode).toBe('ERR_INVALID_REQUEST');
    }
    // A poisoned body is refused as fastify refuses it (400), and pollutes nothing.
    for (const [k, text] of ['{"i":30,"b":{"syncs":[],"__proto__":{"polluted":true}}}', '{"i":31,"b":{"constructor":{"prototype":{"polluted":true}}}}', '{"i":32,"__proto__":{"polluted":true},"b":{}}'].entries()) {
      ch.frame(text);
      const a = await ch.next();
      expect([a.i, a.s]).toEqual([30 + k, 400]);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await stats()).scheduler).toEqual(before.scheduler);
    // A creation frame is the task route's: its schema, its configured registries, and no request
    // to any registry for what it refuses; a poisoned one is refused as fastify refuses it.
    const registryRequests = registry.accessLog().length;
    for (const [k, t] of [{ digest: '../x', upstream: upstream() }, { digest: layer, upstream: { registry: '127.0.0.1:1', name: 'attack/app' } }, { digest: layer, upstream: { ...upstream(), name: '../../v2/_catalog' } }].entries()) {
      ch.frame({ i: 40 + k, t });
      const a = await ch.next();
      expect([a.i, a.s]).toEqual([40 + k, 400]);
    }
    ch.frame('{"i":43,"t":{"digest":"x","__proto__":{"polluted":true}}}');
    expect((await ch.next()).s).toBe(400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(registry.accessLog().length).toBe(registryRequests);
    ch.frame({ i: 44, t: { digest: layer, upstream: upstream() } });
    const created = await ch.next();
    expect([created.i, created.s, (created.b as { digest?: string }).digest]).toEqual([44, 200, layer]);
    ch.frame({ i: 20, b: { syncs: [{ digest: layer, have: [], wantSeed: 0, badParents: [] }] } });
    const good = await ch.next();
    expect([good.i, good.s]).toEqual([20, 200]);
    expect(Array.isArray((good.b as { syncs: Array<{ answer: SyncResponse }> }).syncs[0]!.answer.hashes)).toBe(true);
    ch.destroy();
    // Each of these closes the channel without an answer; the supernode goes on answering.
    const oversized = Buffer.alloc(4);
    oversized.writeUInt32BE((1 << 20) + 1);
    const closers: Array<(c: RawChannel) => void> = [
      (c) => c.frame('not json'),
      (c) => c.frame({ b: { syncs: [] } }),
      (c) => c.frame({ i: -1, b: { syncs: [] } }),
      (c) => c.write(oversized),
    ];
    for (const close of closers) {
      const c = await open(member);
      close(c);
      await c.closed;
      await expect(c.next()).rejects.toThrow(/closed/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await call({ method: 'POST', path: '/api/v1/peers/self/heartbeat', token: member, body: {} })).status).toBe(200);
  });

  it("a member calling faster than its allowance gets 429 without the route running; another member is still answered", async () => {
    // A supernode of its own with 1 call a second per peer (burst 256), so the flood outruns the refill on any machine.
    const metered = await PollenProcess.spawn('supernode', ['--secret', SECRET, '--upstream', registry.url, '--peer-request-rate', '1']);
    try {
      const on = callOn(Number(new URL(metered.url).port));
      const flooder = await registered('flooder', '127.0.0.1:42001', on);
      const polite = await registered('polite', '127.0.0.1:42002', on);
      const answers = await Promise.all(Array.from({ length: 320 }, () => on({ method: 'POST', path: `/api/v1/tasks/${layer}/sync`, token: flooder, body: { have: [], wantSeed: 0, badParents: [] } })));
      const refused = answers.filter((r) => r.status === 429);
      expect(refused.length).toBeGreaterThan(0);
      expect(answers.filter((r) => r.status !== 429).length).toBeLessThanOrEqual(256 + 60);
      const body = JSON.parse(refused[0]!.body) as { errors: Array<{ code: string; detail: { pollenCode: string } }> };
      expect(body.errors[0]).toMatchObject({ code: 'TOOMANYREQUESTS', detail: { pollenCode: 'ERR_TOO_MANY_REQUESTS' } });
      expect((await on({ method: 'POST', path: '/api/v1/peers/self/heartbeat', token: polite, body: {} })).status).toBe(200);
    } finally {
      await metered.stop();
    }
  }, 120_000);

  it("a member asking every piece hash on each sync (or creating its task again) pays for the answers' bytes: refused with 429 once they pass its allowance; another member is still answered", async () => {
    // A supernode of its own with 1 call a second per peer (burst 256) and 128 KiB pieces for any
    // swarm: a 16 MiB layer's ~128 hashes are ~8.6 KB an answer, three calls of ANSWER_BYTES_PER_CALL.
    const big = (await pushRandomImage(registry, 'attack/hashes', [16 * MiB])).layers[0]!.descriptor.digest as Digest;
    const metered = await PollenProcess.spawn('supernode', ['--secret', SECRET, '--upstream', registry.url, '--peer-request-rate', '1', '--small-pieces-from', '1']);
    try {
      const on = callOn(Number(new URL(metered.url).port));
      const [greedy, polite] = [await registered('greedy', '127.0.0.1:44001', on), await registered('polite', '127.0.0.1:44002', on)];
      const create = { digest: big, upstream: { registry: registry.host, name: 'attack/hashes' } };
      let pieces = 0;
      for (const t of [greedy, polite]) {
        const res = await on({ method: 'POST', path: '/api/v1/tasks', token: t, body: create });
        expect(res.status, res.body).toBe(200);
        pieces = (JSON.parse(res.body) as TaskAnswer).pieceCount;
      }
      expect(pieces).toBeGreaterThanOrEqual(128);
      const sync = (token: string, knownHashes = 0): Promise<RawAnswer> => on({ method: 'POST', path: `/api/v1/tasks/${big}/sync`, token, body: { have: [], wantSeed: 0, badParents: [], knownHashes } });
      await waitFor(async () => (JSON.parse((await sync(polite)).body) as SyncResponse).hashes.filter((h) => typeof h === 'string').length === pieces, 'every piece hash', 30_000);
      const started = Date.now();
      let sent = 0;
      let refused: RawAnswer | undefined;
      for (let k = 0; k < 200 && !refused; k++) {
        const res = await (k % 2 === 0 ? sync(greedy) : on({ method: 'POST', path: '/api/v1/tasks', token: greedy, body: create }));
        if (res.status === 429) refused = res;
        else {
          expect(res.status, res.body).toBe(200);
          sent += Buffer.byteLength(res.body);
        }
      }
      // Refused well before the 256 calls of its burst, with the bytes it was sent within the burst and the refill.
      expect(refused, 'the greedy member was never refused').toBeDefined();
      const detail = JSON.parse(refused!.body).errors[0].detail as { pollenCode: string; retryAfter: number };
      expect(detail.pollenCode).toBe('ERR_TOO_MANY_REQUESTS');
      // Retry-After says how long its debt takes to pay (whole seconds, the body's too); after that it is answered.
      expect(refused!.headers['retry-after']).toBe(String(detail.retryAfter));
      expect(detail.retryAfter).toBeGreaterThanOrEqual(1);
      expect(sent).toBeGreaterThan(100 * 4096);
      expect(sent).toBeLessThanOrEqual((256 + (Date.now() - started) / 1000 + 3) * 4096);
      // The other member, asking only what it lacks (nothing), is answered.
      expect((await sync(polite, pieces)).status).toBe(200);
      await new Promise((r) => setTimeout(r, detail.retryAfter * 1000));
      expect((await sync(greedy, pieces)).status).toBe(200);
    } finally {
      await metered.stop();
    }
  }, 120_000);

  it('a member syncing (or creating tasks with a first sync) in a flood under one id holds one slot of the sync pacing: another member is not pushed back', async () => {
    // A supernode of its own pacing to 1 sync a second: slots 1 s apart.
    const paced = await PollenProcess.spawn('supernode', ['--secret', SECRET, '--upstream', registry.url, '--sync-rate', '1']);
    try {
      const on = callOn(Number(new URL(paced.url).port));
      const enrol = async (peerId: string, wireAddr: string): Promise<string> => {
        const token = await registered(peerId, wireAddr, on);
        expect((await on({ method: 'POST', path: '/api/v1/tasks', token, body: { digest: layer, upstream: upstream() } })).status).toBe(200);
        return token;
      };
      const flooder = await enrol('flooder', '127.0.0.1:43001');
      const polite = await enrol('polite', '127.0.0.1:43002');
      const wait = async (token: string): Promise<number> => {
        const res = await on({ method: 'POST', path: `/api/v1/tasks/${layer}/sync`, token, body: { have: [], wantSeed: 0, badParents: [] } });
        expect(res.status, res.body).toBe(200);
        return (JSON.parse(res.body) as SyncResponse).syncMs ?? 0;
      };
      // The line is idle: the first sync takes slot 0; the second, the next one.
      expect(await wait(flooder)).toBe(0);
      expect(await wait(flooder)).toBeGreaterThan(0);
      // Sixty more at once, before that slot: they keep it (each counted as a slot of its own, the
      // line would run to the 4 s cap). A slow machine may see the slot pass once: one more, taken
      // as much as EARLY_GRACE_MS before the held one was due (a loaded CI machine waited 1,050 ms).
      const waits = await Promise.all(Array.from({ length: 60 }, () => wait(flooder)));
      expect(Math.max(...waits)).toBeLessThanOrEqual(1_000 + EARLY_GRACE_MS);
      // A task's creation that asks for the first schedule is a sync to the pacing: twenty at once
      // under the same id are paced (asked to wait) and keep that one slot too.
      const created = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const res = await on({ method: 'POST', path: '/api/v1/tasks', token: flooder, body: { digest: layer, upstream: upstream(), first: { wantSeed: 0 } } });
          expect(res.status, res.body).toBe(200);
          return (JSON.parse(res.body) as TaskAnswer).first?.syncMs ?? 0;
        }),
      );
      expect(Math.max(...created)).toBeGreaterThan(0);
      expect(Math.max(...created)).toBeLessThanOrEqual(1_000 + EARLY_GRACE_MS);
      // The other member is given a slot after the flooder's, not after sixty of them.
      expect(await wait(polite)).toBeLessThanOrEqual(3_000);
    } finally {
      await paced.stop();
    }
  }, 120_000);

  it("peer A cannot take B's id, sync as B, drop B's seed leases, or poll B's preheat work", async () => {
    const a = await registered('peer-a', '127.0.0.1:41001');
    const b = await registered('peer-b', '127.0.0.1:41002');
    const c = await registered('peer-c', '127.0.0.1:41003');
    // B's id, live: refused without B's token (none, A's), and B's address stays.
    expectRefusal(await register('peer-b', '127.0.0.1:666'), [403]);
    expectRefusal(await register('peer-b', '127.0.0.1:666', a), [403]);
    const keepAlive = setInterval(() => {
      for (const t of [a, b, c]) void call({ method: 'POST', path: '/api/v1/peers/self/heartbeat', token: t }).catch(() => {});
    }, 2_000);
    try {
      for (const t of [a, b, c]) expect((await call({ method: 'POST', path: '/api/v1/tasks', token: t, body: { digest: layer, upstream: upstream() } })).status).toBe(200);
      const sync = async (token: string, body: object): Promise<SyncResponse> => {
        const res = await call({ method: 'POST', path: `/api/v1/tasks/${layer}/sync`, token, body: { have: [], wantSeed: 0, badParents: [], ...body } });
        expect(res.status, res.body).toBe(200);
        return JSON.parse(res.body) as SyncResponse;
      };
      await waitFor(async () => (await sync(c, {})).hashes.every((h) => typeof h === 'string'), 'the seed has every piece', 60_000);
      // A claims pieces "as B": they are A's, as the supernode's own view of the task says.
      await sync(a, { peerId: 'peer-b', have: [0, 1] });
      const status = (await (await fetch(`${sn.adminUrl}/api/v1/status`)).json()) as { peers: { id: string; address: string }[]; tasks: { digest: string; grid: { peer: string; held: number }[] }[] };
      const held = new Map(status.tasks.find((t) => t.digest === layer)?.grid.map((r) => [r.peer, r.held]));
      expect(held.get('peer-a')).toBe(2);
      expect(held.get('peer-b') ?? 0).toBe(0);
      expect((await sync(b, { wantSeed: 2 })).seedGrants).toEqual([2, 3]);
      // A "declines" B's seed grants, naming itself B: a decline drops only the caller's own leases,
      // so B keeps 2 and 3 and C is given neither; an oversized list is refused whole.
      await sync(a, { peerId: 'peer-b', declined: [2, 3] });
      expect((await sync(b, { wantSeed: 2 })).seedGrants).toEqual([2, 3]);
      expect((await sync(c, { wantSeed: 2 })).seedGrants).toEqual([4, 5]);
      const tooMany = await call({ method: 'POST', path: `/api/v1/tasks/${layer}/sync`, token: a, body: { have: [], wantSeed: 0, badParents: [], declined: Array.from({ length: 65 }, (_, i) => i) } });
      expectRefusal(tooMany, [400]);
      // B's address is still B's, in the supernode's view and in what it tells the others.
      expect(status.peers.find((p) => p.id === 'peer-b')?.address).toBe('127.0.0.1:41002');
      for (const p of (await sync(c, {})).parents) if (p.peerId === 'peer-b') expect(p.wireAddr).toBe('127.0.0.1:41002');

      // A preheat job for B alone: only B's own token gets its work.
      const jobs = new JobsClient({ baseUrl: sn.adminUrl, token: ADMIN_TOKEN });
      const job = await jobs.create({ type: 'preheat', args: { image: `${registry.host}/${image.ref}`, scope: 'all_peers', peers: ['peer-b'] } });
      const poll = async (token: string, body: object = { reports: [] }, path = '/api/v1/peers/self/preheat'): Promise<RawAnswer> => call({ method: 'POST', path, token, body });
      let workOfB: WorkResponse = { work: [], pollMs: 0 };
      await waitFor(async () => {
        workOfB = JSON.parse((await poll(b)).body) as WorkResponse;
        return workOfB.work.length > 0;
      }, "B's preheat work", 60_000);
      const pollA = await poll(a, { reports: [], peerId: 'peer-b' });
      expect(pollA.status).toBe(200);
      expect((JSON.parse(pollA.body) as WorkResponse).work).toEqual([]);
      expectRefusal(await poll(a, { reports: [] }, '/api/v1/peers/peer-b/preheat'));
      expectRefusal(await poll(a, { reports: [] }, '/api/v1/peers/%70eer-b/preheat'));
      // A reports B's items done: they stay B's, not done.
      await poll(a, { reports: workOfB.work.map((w) => ({ job: w.job, digest: w.digest, ok: true })) });
      const progress = (await jobs.get(job.id)).progress;
      expect(progress.tasks.done).toBe(0);
      await jobs.cancel(job.id);
    } finally {
      clearInterval(keepAlive);
    }
  }, 180_000);
});
