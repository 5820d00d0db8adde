// A task's creation asks for the transfer's first schedule (`first`), and a batch of syncs for
// answers without their empty fields and digests, their hashes trimmed and packed (`terse`). A
// supernode from before those fields whose body schemas refuse any field they do not know (400,
// ERR_INVALID_REQUEST) is asked again without them and gives the answers as before, so peers
// upgraded ahead of their supernodes keep pulling over P2P.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '../../../../src/digest.ts';
import { PollenError } from '../../../../src/errors.ts';
import { PieceSigner } from '../../../../src/p2p/piece-proof.ts';
import type { SyncResponse } from '../../../../src/p2p/supernode-api.ts';
import { packIndexes, terse } from '../../../../src/p2p/sync-answer.ts';
import { SupernodeClient } from '../../../../peer/p2p/supernode-client.ts';
import { errorAnswer } from '../../../../supernode/http/error-handler.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const DIGEST = `sha256:${'a'.repeat(64)}` as Digest;
const META = { digest: DIGEST, size: 10, pieceSize: 524_288, pieceCount: 1, hashes: [null] };
const SCHEDULE = { hashes: [null], hashesFrom: 0, parents: [], seedGrants: [], availability: [0] };
/** Every answer option a sync has asked, oldest first; a supernode of today knows them all. */
const ANSWER_OPTIONS_EVER = ['trimHashes', 'packHashes', 'terse', 'packParents'];

/**
 * A supernode whose task route refuses `first` (or, with `refuseAll`, every creation), and whose
 * sync route refuses the answer options it does not `know`, as the real error handler answers a
 * schema failure; it answers `answer` to a batch it takes (`digestless`: naming no digest, whatever was asked).
 */
async function olderSupernode(refuseAll = false, know: readonly string[] = [], answer: Record<string, unknown> = SCHEDULE, digestless = false, registration: object = {}): Promise<{ url: string; tasks: Array<Record<string, unknown>>; syncs: Array<Record<string, unknown>>; upgrades: string[] }> {
  const tasks: Array<Record<string, unknown>> = [];
  const syncs: Array<Record<string, unknown>> = [];
  const upgrades: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      // Without sync channels: an upgrade is a request to a route it does not have, which its
      // deny-by-default auth hook refuses with 401 (route-auth.ts), before any 404.
      if (req.headers.upgrade !== undefined) {
        upgrades.push(String(req.url));
        const { status, body: error } = errorAnswer(new PollenError('ERR_CLUSTER_UNAUTHORIZED', 'no route declares who may call it'));
        res.statusCode = status;
        return res.end(JSON.stringify(error));
      }
      if (req.url === '/api/v1/peers') return res.end(JSON.stringify({ peerId: 'p1', token: 'token', heartbeatMs: 1000, ...registration }));
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
      if (req.url === '/api/v1/syncs') {
        syncs.push(body);
        const items = body.syncs as Array<Record<string, unknown>>;
        if (!items.some((item) => ANSWER_OPTIONS_EVER.some((o) => o in item && !know.includes(o)))) {
          return res.end(JSON.stringify({ syncs: items.map((item) => (item.terse === true ? { answer: terse(answer as unknown as SyncResponse, item.packParents === true) } : digestless ? { answer } : { digest: item.digest, answer })) }));
        }
      } else tasks.push(body);
      if (refuseAll || 'first' in body || req.url === '/api/v1/syncs') {
        const { status, body: error } = errorAnswer(new PollenError('ERR_INVALID_REQUEST', 'invalid request: body must NOT have additional properties'));
        res.statusCode = status;
        return res.end(JSON.stringify(error));
      }
      res.end(JSON.stringify(META));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tasks, syncs, upgrades };
}

/** A client of `url`, registered there as p1. */
async function registeredClient(url: string): Promise<SupernodeClient> {
  const client = new SupernodeClient({}, { urls: [url], timeoutMs: 2_000 });
  cleanups.push(() => client.close());
  await client.register(url, { peerId: 'p1', wireAddr: '127.0.0.1:1', uploadSlots: 4, holdings: [] });
  return client;
}

describe('SupernodeClient task creation', () => {
  const upstream = { registry: 'registry.test', name: 'app' };

  it('asks a supernode that refuses the first schedule again without it, and gets the task', async () => {
    const { url, tasks } = await olderSupernode();
    const client = await registeredClient(url);
    client.reportWith(() => ({ uploadedBytes: 7 }));
    const answer = await client.createTask(url, { digest: DIGEST, upstream, first: { wantSeed: 2 } });
    expect(answer).toEqual(META);
    // The heartbeat's report goes with the first schedule and is left out with it.
    expect(tasks).toEqual([
      { digest: DIGEST, upstream, first: { wantSeed: 2 }, report: { uploadedBytes: 7 }, terse: true, packParents: true },
      { digest: DIGEST, upstream },
    ]);
    expect(client.lastReportAt(url)).toBe(0);
  });

  it('does not ask again when the request was refused without a first schedule, or refused again', async () => {
    const { url, tasks } = await olderSupernode(true);
    const client = await registeredClient(url);
    await expect(client.createTask(url, { digest: DIGEST, upstream })).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    expect(tasks).toHaveLength(1);
    await expect(client.createTask(url, { digest: DIGEST, upstream, first: { wantSeed: 2 } })).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
    expect(tasks).toHaveLength(3);
  });
});

describe('SupernodeClient syncs', () => {
  it('asks a supernode that refuses terse answers again without, and no longer asks for them there', async () => {
    for (const know of [[], ['trimHashes', 'packHashes']]) {
      const { url, syncs } = await olderSupernode(false, know);
      const client = await registeredClient(url);
      const body = { have: [], wantSeed: 0, badParents: [], knownHashes: 0 };
      expect(await client.sync(url, DIGEST, body)).toEqual(SCHEDULE);
      expect(await client.sync(url, DIGEST, body)).toEqual(SCHEDULE);
      const asked = (option: string) => syncs.map((b) => (b.syncs as Array<Record<string, unknown>>).map((item) => item[option]));
      // One option less at each refusal: packParents, then terse.
      expect(asked('packParents')).toEqual([[true], [undefined], [undefined], [undefined]]);
      expect(asked('terse')).toEqual([[true], [true], [undefined], [undefined]]);
      // terse implies the older options: they are never asked on their own.
      expect(asked('trimHashes')).toEqual([[undefined], [undefined], [undefined], [undefined]]);
      expect(asked('packHashes')).toEqual([[undefined], [undefined], [undefined], [undefined]]);
    }
  });

  it('asks a supernode that refuses packed parents for terse answers alone, and reads their parents as a list', async () => {
    const parents = [{ peerId: 'ab'.repeat(20), wireAddr: '10.0.0.2:65002' }];
    const { url, syncs } = await olderSupernode(false, ['trimHashes', 'packHashes', 'terse'], { ...SCHEDULE, parents });
    const client = await registeredClient(url);
    const body = { have: [], wantSeed: 0, badParents: [], knownHashes: 0 };
    expect(await client.sync(url, DIGEST, body)).toEqual({ ...SCHEDULE, parents });
    expect(await client.sync(url, DIGEST, body)).toEqual({ ...SCHEDULE, parents });
    expect(syncs.map((b) => (b.syncs as Array<Record<string, unknown>>).map((item) => [item.terse, item.packParents]))).toEqual([[[true, true]], [[true, undefined]], [[true, undefined]]]);
  });

  it('packs its haves, when shorter, only for a supernode whose registration says it reads them', async () => {
    const have = Array.from({ length: 40 }, (_, k) => 3 * k);
    for (const [registration, packed] of [[{}, false], [{ syncFields: ['havePacked'] }, true], [{ syncFields: 'havePacked' }, false]] as const) {
      const { url, syncs } = await olderSupernode(false, ANSWER_OPTIONS_EVER, SCHEDULE, false, registration);
      const client = await registeredClient(url);
      await client.sync(url, DIGEST, { have, wantSeed: 0, badParents: [], knownHashes: 0 });
      await client.sync(url, DIGEST, { have: [5], wantSeed: 0, badParents: [], knownHashes: 0 });
      const [lots, one] = syncs.map((b) => (b.syncs as Array<Record<string, unknown>>)[0]!);
      expect(lots).toEqual(packed ? expect.objectContaining({ havePacked: packIndexes(have) }) : expect.objectContaining({ have }));
      expect(packed ? lots : {}).not.toHaveProperty('have');
      expect(one).toMatchObject({ have: [5] });
    }
  });

  it('tells the report period the wait its last sync answer asked', async () => {
    const { url } = await olderSupernode(false, ANSWER_OPTIONS_EVER, { ...SCHEDULE, syncMs: 1_250 });
    const client = await registeredClient(url);
    const waits: number[] = [];
    client.reportWith(() => ({ uploadedBytes: 7 }), (_url, syncWaitMs) => (waits.push(syncWaitMs), 1_000));
    const body = { have: [], wantSeed: 0, badParents: [], knownHashes: 0 };
    await client.sync(url, DIGEST, body);
    await client.sync(url, DIGEST, body);
    expect(waits).toEqual([0, 1_250]);
  });

  it('reads packed parents as the list', async () => {
    const parents = [{ peerId: 'ab'.repeat(20), wireAddr: '10.0.0.2:65002' }, { peerId: 'cd'.repeat(20), wireAddr: '10.0.0.3:65002' }];
    const { url } = await olderSupernode(false, ANSWER_OPTIONS_EVER, { ...SCHEDULE, parents });
    const client = await registeredClient(url);
    expect(await client.sync(url, DIGEST, { have: [], wantSeed: 0, badParents: [], knownHashes: 0 })).toEqual({ ...SCHEDULE, parents });
  });

  it('reads terse answers, which name no digest, as whole ones, in the order asked', async () => {
    const { url, syncs } = await olderSupernode(false, ANSWER_OPTIONS_EVER);
    const client = await registeredClient(url);
    const body = { have: [], wantSeed: 0, badParents: [], knownHashes: 0 };
    const other = `sha256:${'b'.repeat(64)}` as Digest;
    expect(await Promise.all([client.sync(url, DIGEST, body), client.sync(url, other, body)])).toEqual([SCHEDULE, SCHEDULE]);
    expect(syncs.map((b) => (b.syncs as Array<Record<string, unknown>>).map((item) => [item.digest, item.terse]))).toEqual([[[DIGEST, true], [other, true]]]);
  });

  it('asks a supernode without sync channels (its 401 to the upgrade) over HTTP, keeps its registration, and does not try the channel again at every sync', async () => {
    const { url, syncs, upgrades } = await olderSupernode(false, ANSWER_OPTIONS_EVER);
    const client = await registeredClient(url);
    const body = { have: [], wantSeed: 0, badParents: [], knownHashes: 0 };
    for (let i = 0; i < 3; i++) expect(await client.sync(url, DIGEST, body)).toEqual(SCHEDULE);
    expect(upgrades).toEqual(['/api/v1/syncs/channel']);
    expect(syncs).toHaveLength(3);
    // Every sync after the refused upgrade still went with the registration's token.
    expect(client.syncBatches).toEqual({ channel: 0, http: 3 });
  });

  it('leaves out the lists that are empty and the flags that are false, never a count whose absence means something else', async () => {
    const { url, syncs } = await olderSupernode(false, ANSWER_OPTIONS_EVER);
    const client = await registeredClient(url);
    await client.sync(url, DIGEST, { have: [], wantSeed: 0, badParents: [], corruptParents: [], knownHashes: 0, starved: false, declined: [], wantParents: 0, leave: false });
    await client.sync(url, DIGEST, { have: [3], wantSeed: 2, badParents: ['p9'], knownHashes: 4, starved: true, declined: [1], wantParents: 2 });
    const [quiet, busy] = syncs.map((b) => (b.syncs as Array<Record<string, unknown>>)[0]!);
    expect(quiet).toEqual({ digest: DIGEST, wantSeed: 0, knownHashes: 0, wantParents: 0, terse: true, packParents: true });
    expect(busy).toEqual({ digest: DIGEST, have: [3], wantSeed: 2, badParents: ['p9'], knownHashes: 4, starved: true, declined: [1], wantParents: 2, terse: true, packParents: true });
  });

  it('refuses an answer without its digest to a sync that did not ask for terse answers', async () => {
    const { url, syncs } = await olderSupernode(false, ['trimHashes', 'packHashes'], SCHEDULE, true);
    const client = await registeredClient(url);
    const body = { have: [], wantSeed: 0, badParents: [], knownHashes: 0 };
    // Refused with `terse`, answered without it: an answer that names no digest is not one to trust.
    await expect(client.sync(url, DIGEST, body)).rejects.toMatchObject({ code: 'ERR_SUPERNODE_UNAVAILABLE' });
    expect(syncs.map((b) => (b.syncs as Array<Record<string, unknown>>)[0]!.terse)).toEqual([true, true, undefined]);
  });

  it('unpacks packed hashes into the list the transfer reads, and refuses a malformed packing', async () => {
    const hashes = ['1'.repeat(64), null, 'f'.repeat(64)];
    const packed = Buffer.concat([Buffer.from(hashes[0]!, 'hex'), Buffer.alloc(32), Buffer.from(hashes[2]!, 'hex')]).toString('base64');
    const body = { have: [], wantSeed: 0, badParents: [], knownHashes: 2 };
    const answerOf = async (hashesPacked: string) => {
      const { url } = await olderSupernode(false, ['trimHashes', 'packHashes'], { ...SCHEDULE, hashes: [], hashesFrom: 2, hashesPacked });
      return (await registeredClient(url)).sync(url, DIGEST, body);
    };
    expect(await answerOf(packed)).toEqual({ ...SCHEDULE, hashes, hashesFrom: 2 });
    // Not whole hashes, not base64 as packHashes writes it.
    for (const bad of [packed.slice(0, 40), `${packed}!`, `${packed.slice(0, 4)}\n${packed.slice(4)}`]) {
      await expect(answerOf(bad)).rejects.toMatchObject({ code: 'ERR_SUPERNODE_UNAVAILABLE' });
    }
  });
});

describe("SupernodeClient and the supernode's piece key", () => {
  /** A supernode whose registration answers with `pieceKeys` in turn (undefined: none, as one from before proofs). */
  async function registrar(pieceKeys: Array<string | undefined>): Promise<string> {
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on('end', () => {
        const pieceKey = pieceKeys.shift();
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ peerId: 'p1', token: 'token', heartbeatMs: 1000, ...(pieceKey === undefined ? {} : { pieceKey }) }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('checks proofs with the key of the registration answer; none from a supernode that sends none or one that is not a key, and none after a registration without it', async () => {
    const signer = PieceSigner.generate();
    const url = await registrar([signer.publicKey, undefined, 'not-a-key', signer.publicKey]);
    const client = await registeredClient(url);
    const hash = 'ab'.repeat(32);
    const proof = { index: 0, hash, signature: Buffer.from(signer.sign(DIGEST, 0, hash), 'base64') };
    expect(client.proofVerifier(url)?.verify(DIGEST, proof)).toBe(true);
    await client.register(url, { peerId: 'p1', wireAddr: '127.0.0.1:1', uploadSlots: 4, holdings: [] });
    expect(client.proofVerifier(url)).toBeUndefined();
    await client.register(url, { peerId: 'p1', wireAddr: '127.0.0.1:1', uploadSlots: 4, holdings: [] });
    expect(client.proofVerifier(url)).toBeUndefined();
    await client.register(url, { peerId: 'p1', wireAddr: '127.0.0.1:1', uploadSlots: 4, holdings: [] });
    expect(client.proofVerifier(url)?.verify(DIGEST, proof)).toBe(true);
  });
});
