// The seed channel (src/p2p/seed-channel-frames.ts) against the real cluster app, with a seed whose
// pieces come when the test says: pieces are answered in the order asked, each whole with its
// proof, refused with the route's status and OCI body; a piece given up before its answer began is
// skipped, one given up part way is cut short and the next still comes whole; the token is checked
// at every request; malformed or too many requests close the channel; a piece sent whole on a lease
// pays for one call of the peer's allowance, once; a piece carries the blob's vouched hash list once
// the seed holds the blob verified. And the peer's client (SupernodeClient,
// SeedChannels) fetches its seed pieces there: only the first piece in line is timed, a piece
// given up (its stall watchdog) frees the line, a reader that stops lets the channel read on.
import { randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { sha256Digest, type Digest } from '../../../../src/digest.ts';
import { PollenError } from '../../../../src/errors.ts';
import { listenOn } from '../../../../src/http-app.ts';
import { layoutFor, pieceHashList, pieceRange } from '../../../../src/p2p/metainfo.ts';
import { PieceSigner, ProofVerifier } from '../../../../src/p2p/piece-proof.ts';
import { ANSWER_END, ANSWER_HEAD, dataFrameHead, jsonAnswerFrame, MAX_SEED_QUEUED, MAX_SEED_REQUEST_BYTES, SEED_CHANNEL_PATH, SEED_CHANNEL_PROTOCOL, SeedAnswerReader, type SeedAnswerEnd, type SeedAnswerHead } from '../../../../src/p2p/seed-channel-frames.ts';
import { PIECE_HASH_LIST_HEADER } from '../../../../src/p2p/supernode-api.ts';
import type { PooledBody } from '../../../../src/pooled-body.ts';
import { SeedChannels } from '../../../../peer/p2p/seed-channel.ts';
import { fetchSeedPiece } from '../../../../peer/p2p/seed-piece.ts';
import { SupernodeClient } from '../../../../peer/p2p/supernode-client.ts';
import { fakeSeedSupernode, wholeAnswer } from '../../../helpers/seed-channel-fake.ts';
import { createClusterApp } from '../../../../supernode/http/apps.ts';
import { PeerRequestBudget } from '../../../../supernode/http/peer-request-budget.ts';
import type { SeedPort } from '../../../../supernode/p2p/routes-p2p.ts';
import { Scheduler } from '../../../../supernode/p2p/scheduler.ts';
import type { SeedTask } from '../../../../supernode/p2p/seed.ts';
import { PEER_TTL_MS, Tracker } from '../../../../supernode/p2p/tracker.ts';

const SIZE = 3 * 600 * 1024;
const BYTES = randomBytes(SIZE);
const DIGEST = sha256Digest(BYTES);
const META = layoutFor(DIGEST, SIZE, 600 * 1024);
const pieceBytes = (i: number): Buffer => {
  const { start, length } = pieceRange(SIZE, META.pieceSize, i);
  return BYTES.subarray(start, start + length);
};
const hashOf = (i: number): string => sha256Digest(pieceBytes(i)).slice('sha256:'.length);
/** A blob of two pieces larger than a channel lets a reader hold (BODY_HIGH_WATER_BYTES). */
const BIG_BYTES = randomBytes(2 * 1536 * 1024);
const BIG = sha256Digest(BIG_BYTES);
const BIG_META = layoutFor(BIG, BIG_BYTES.length, 1536 * 1024);

/**
 * A seed of one blob whose pieces' bytes after their first chunk wait for `release(i)` (all flow
 * when `gated` is false); it knows piece i's hash once all its bytes went (as the real seed learns
 * it from the registry). Only the peer that created the task is admitted.
 */
function gatedSeed(gated: boolean): { seed: SeedPort; release(i: number): void; admitted: Set<string>; served: number[] } {
  const task: SeedTask = { meta: { ...META, hashes: META.hashes.map(() => null) }, state: { name: 'complete' } } as unknown as SeedTask;
  const gates = new Map<number, { promise: Promise<void>; open: () => void }>();
  const gate = (i: number) => {
    let g = gates.get(i);
    if (!g) {
      let open!: () => void;
      const promise = new Promise<void>((r) => (open = r));
      gates.set(i, (g = { promise, open }));
    }
    return g;
  };
  const admitted = new Set<string>();
  const served: number[] = [];
  const seed = {
    served: (bytes: number) => served.push(bytes),
    get: (d: Digest) => (d === DIGEST ? task : undefined),
    openTask: async (req: { peerId: string }) => (admitted.add(req.peerId), task),
    isAdmitted: (peerId: string) => admitted.has(peerId),
    async readPiece(peerId: string, d: Digest, index: number, signal: AbortSignal) {
      if (!admitted.has(peerId)) throw new PollenError('ERR_SEED_NOT_ADMITTED', `peer ${peerId} is not admitted for ${d}`, { digest: d });
      if (d === BIG && index < BIG_META.pieceCount) {
        const start = index * BIG_META.pieceSize;
        const big = BIG_BYTES.subarray(start, start + BIG_META.pieceSize);
        return { length: big.length, body: { pooled: true, async *chunks() { yield big; } } as PooledBody, hash: () => undefined, layout: undefined };
      }
      if (d !== DIGEST || index >= META.pieceCount) throw new PollenError('ERR_NOT_FOUND', `the seed has no piece ${index} of ${d}`);
      const bytes = pieceBytes(index);
      const body: PooledBody = {
        pooled: true,
        async *chunks(acquire) {
          for (let pos = 0, k = 0; pos < bytes.length; k++) {
            // As the seed's partial blob waits for the registry: until the bytes come or the wait is given up.
            if (k === 1 && gated) await Promise.race([gate(index).promise, new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }))]);
            const whole = acquire();
            const n = Math.min(whole.length, bytes.length - pos);
            bytes.copy(whole, 0, pos, pos + n);
            pos += n;
            if (pos === bytes.length) task.meta.hashes[index] = hashOf(index);
            yield whole.subarray(0, n);
          }
        },
      };
      return { length: bytes.length, body, hash: () => task.meta.hashes[index] ?? undefined, layout: undefined };
    },
  };
  return { seed: seed as unknown as SeedPort, release: (i) => gate(i).open(), admitted, served };
}

const apps: FastifyInstance[] = [];
const clients: SupernodeClient[] = [];
const clientsClose: Array<() => void> = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const c of clientsClose.splice(0)) c();
  for (const c of clients.splice(0)) await c.close();
  for (const a of apps.splice(0)) await a.close();
});

async function harness(options: { gated?: boolean; perSecond?: number } = {}) {
  const clock = new ManualClock(0);
  const scheduler = new Scheduler({ clock }, {});
  const tracker = new Tracker({ clock, onDrop: (p) => scheduler.dropPeer(p) });
  const { seed, release, served } = gatedSeed(options.gated ?? false);
  const signer = PieceSigner.generate();
  const peerBudget = options.perSecond === undefined ? undefined : new PeerRequestBudget({ clock }, { perSecond: options.perSecond });
  const app = createClusterApp(pino({ level: 'silent' }), { tracker, scheduler, seed, signer, jobs: { work: () => ({ work: [], pollMs: 1_000 }) }, ...(peerBudget ? { peerBudget } : {}) }, { secret: undefined });
  apps.push(app);
  const url = await listenOn(app, '127.0.0.1:0');
  const register = async (peerId: string, createTask = true): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/peers', payload: { peerId, wireAddr: '127.0.0.1:4000', uploadSlots: 4 } });
    const token = (res.json() as { token: string }).token;
    if (createTask) expect((await app.inject({ method: 'POST', url: '/api/v1/tasks', headers: { authorization: `Bearer ${token}` }, payload: { digest: DIGEST, upstream: { registry: 'registry.test', name: 'app' } } })).statusCode).toBe(200);
    return token;
  };
  return { app, clock, tracker, url, port: Number(new URL(url).port), release, register, signer, served };
}

interface Answer {
  head: SeedAnswerHead;
  bytes: Buffer;
  end?: SeedAnswerEnd;
}

/** A seed channel spoken byte for byte: requests written as frames, answers read with the peer's reader. */
async function rawChannel(port: number, token: string) {
  const socket = net.connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(`POST ${SEED_CHANNEL_PATH} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: ${SEED_CHANNEL_PROTOCOL}\r\nauthorization: Bearer ${token}\r\ncontent-length: 0\r\n\r\n`);
  const answers: Answer[] = [];
  let current: Answer | undefined;
  const reader = new SeedAnswerReader({
    head: (head) => {
      current = { head, bytes: Buffer.alloc(0) };
      if (head.s !== 200) {
        answers.push(current);
        current = undefined;
      }
    },
    data: (b) => (current!.bytes = Buffer.concat([current!.bytes, b])),
    end: (end) => {
      current!.end = end;
      answers.push(current!);
      current = undefined;
    },
  });
  let opened = false;
  let buf = Buffer.alloc(0);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (c: Buffer) => {
      if (opened) return reader.push(c);
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!/^HTTP\/1\.1 101 /.test(buf.toString('latin1', 0, end))) return reject(new Error(buf.toString()));
      opened = true;
      resolve();
      if (buf.length > end + 4) reader.push(buf.subarray(end + 4));
    });
  });
  const frame = (json: unknown): void => {
    const text = typeof json === 'string' ? json : JSON.stringify(json);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(Buffer.byteLength(text));
    socket.write(Buffer.concat([h, Buffer.from(text)]));
  };
  const answered = async (n: number): Promise<Answer[]> => {
    const deadline = Date.now() + 5_000;
    while (answers.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(answers.length, 'answers').toBeGreaterThanOrEqual(n);
    return answers.slice(0, n);
  };
  return { socket, frame, answered, closed };
}

/** A stand-in supernode (test/helpers/seed-channel-fake.ts), closed after the test; its URL. */
async function fakeSupernode(onRequests: (text: string, sock: net.Socket) => void): Promise<string> {
  const fake = await fakeSeedSupernode(onRequests);
  clientsClose.push(fake.close);
  return fake.url;
}

/** The peer's client of the supernode at `url`, registered as p1, its task created (admitted for DIGEST). */
async function peerClient(url: string): Promise<SupernodeClient> {
  const client = new SupernodeClient({}, { urls: [url], timeoutMs: 5_000 });
  clients.push(client);
  await client.register(url, { peerId: 'p1', wireAddr: '127.0.0.1:4001', uploadSlots: 4, holdings: [] });
  await client.createTask(url, { digest: DIGEST, upstream: { registry: 'registry.test', name: 'app' } });
  return client;
}

describe('seed channel', () => {
  it('answers pieces in the order asked, each whole with its hash and the seed signature (in the head once known, else at the end)', async () => {
    const h = await harness();
    const ch = await rawChannel(h.port, await h.register('p1'));
    for (const x of [2, 0, 1, 0]) ch.frame({ i: 10 + x, d: DIGEST, x });
    const answers = await ch.answered(4);
    expect(answers.map((a) => [a.head.i, a.head.s])).toEqual([[12, 200], [10, 200], [11, 200], [10, 200]]);
    for (const [k, a] of answers.entries()) {
      const x = [2, 0, 1, 0][k]!;
      expect(a.head.n).toBe(pieceBytes(x).length);
      expect(a.bytes.equals(pieceBytes(x))).toBe(true);
      // Asked again, piece 0's hash was known before its head went out.
      const proof = k === 3 ? a.head : a.end!;
      expect(proof.h).toBe(hashOf(x));
      expect(new ProofVerifier(h.signer.publicKey).verify(DIGEST, { index: x, hash: proof.h!, signature: Buffer.from(proof.g!, 'base64') })).toBe(true);
      expect(a.end!.x).toBeUndefined();
    }
  });

  it("carries the blob's vouched list of piece hashes with a piece once the seed holds the blob verified, over the channel as over the route", async () => {
    const h = await harness();
    const client = await peerClient(h.url);
    const listOf = async (index: number) => {
      const a = await client.seedPiece(h.url, DIGEST, index, AbortSignal.timeout(5_000));
      for await (const _ of a.body);
      return a.hashList?.();
    };
    // Not before the seed has every piece's hash.
    expect([await listOf(0), await listOf(1)]).toEqual([undefined, undefined]);
    await listOf(2);
    const list = pieceHashList({ ...META, hashes: META.hashes.map((_, i) => hashOf(i)) });
    expect(list).toBeDefined();
    expect(await listOf(0)).toBe(list);
    expect(client.seedPieces.http).toBe(0);
    // The route says it as a header.
    const token = await h.register('p2');
    const res = await h.app.inject({ method: 'GET', url: `/api/v1/seed/${DIGEST}/pieces/1`, headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(200);
    expect(res.headers[PIECE_HASH_LIST_HEADER]).toBe(list);
  });

  it("refuses what the route refuses, with its status and OCI body, and goes on: a piece the seed does not have, a bad digest, a blob the peer was not admitted for", async () => {
    const h = await harness();
    const ch = await rawChannel(h.port, await h.register('p1'));
    const other = await rawChannel(h.port, await h.register('p2', false));
    ch.frame({ i: 1, d: DIGEST, x: 99 });
    ch.frame({ i: 2, d: 'sha256:nothex', x: 0 });
    ch.frame({ i: 3, d: DIGEST, x: -1 });
    ch.frame({ i: 4, d: DIGEST, x: 0 });
    other.frame({ i: 1, d: DIGEST, x: 0 });
    const answers = await ch.answered(4);
    expect(answers.map((a) => [a.head.i, a.head.s])).toEqual([[1, 404], [2, 400], [3, 400], [4, 200]]);
    expect(answers[0]!.head.b).toMatchObject({ errors: [{ detail: { pollenCode: 'ERR_NOT_FOUND' } }] });
    expect(answers[1]!.head.b).toMatchObject({ errors: [{ detail: { pollenCode: 'ERR_INVALID_DIGEST' } }] });
    expect(answers[3]!.bytes.equals(pieceBytes(0))).toBe(true);
    const [refused] = await other.answered(1);
    expect(refused!.head.s).toBe(403);
    expect(refused!.head.b).toMatchObject({ errors: [{ detail: { pollenCode: 'ERR_SEED_NOT_ADMITTED' } }] });
  });

  it('skips a piece given up before its answer began (499, no body), cuts one given up part way short, and the next comes whole', async () => {
    const h = await harness({ gated: true });
    const ch = await rawChannel(h.port, await h.register('p1'));
    ch.frame({ i: 1, d: DIGEST, x: 0 });
    ch.frame({ i: 2, d: DIGEST, x: 1 });
    ch.frame({ i: 3, d: DIGEST, x: 2 });
    // Piece 0's first chunk is out; the peer gives up 1 (not begun), then 0 (part way).
    await new Promise((r) => setTimeout(r, 50));
    ch.frame({ i: 2, c: 1 });
    await new Promise((r) => setTimeout(r, 50));
    ch.frame({ i: 1, c: 1 });
    h.release(2);
    const answers = await ch.answered(3);
    expect(answers.map((a) => [a.head.i, a.head.s])).toEqual([[1, 200], [2, 499], [3, 200]]);
    expect(answers[0]!.end).toEqual({ i: 1, x: 1 });
    expect(answers[0]!.bytes.length).toBeLessThan(pieceBytes(0).length);
    expect(answers[1]!.bytes.length).toBe(0);
    expect(answers[2]!.bytes.equals(pieceBytes(2))).toBe(true);
    expect(answers[2]!.end!.h).toBe(hashOf(2));
  });

  it("opens only with a registered peer's own token", async () => {
    const h = await harness();
    await expect(rawChannel(h.port, 'not-a-token')).rejects.toThrow(/^HTTP\/1\.1 401 /);
    const ch = await rawChannel(h.port, await h.register('p1'));
    ch.frame({ i: 1, d: DIGEST, x: 0 });
    expect((await ch.answered(1))[0]!.head.s).toBe(200);
  });

  it('gives up the piece in answer while it waits on the registry, at once: the pieces behind it come', async () => {
    const h = await harness({ gated: true });
    const ch = await rawChannel(h.port, await h.register('p1'));
    ch.frame({ i: 1, d: DIGEST, x: 0 });
    ch.frame({ i: 2, d: DIGEST, x: 1 });
    await new Promise((r) => setTimeout(r, 50));
    // Piece 0 never comes from the registry; the peer gives it up.
    ch.frame({ i: 1, c: 1 });
    h.release(1);
    const answers = await ch.answered(2);
    expect(answers[0]!.end).toEqual({ i: 1, x: 1 });
    expect(answers[1]!.bytes.equals(pieceBytes(1))).toBe(true);
    // A cancel of a request never made closes the channel.
    ch.frame({ i: 7, c: 1 });
    await ch.closed;
  });

  it('checks the token at every request: a peer the tracker dropped gets 401 and the channel closes', async () => {
    const h = await harness();
    const ch = await rawChannel(h.port, await h.register('p1'));
    ch.frame({ i: 1, d: DIGEST, x: 0 });
    await ch.answered(1);
    h.clock.advance(PEER_TTL_MS + 1);
    h.tracker.sweep();
    ch.frame({ i: 2, d: DIGEST, x: 1 });
    const answers = await ch.answered(2);
    expect([answers[1]!.head.i, answers[1]!.head.s]).toEqual([2, 401]);
    await ch.closed;
  });

  it.each([
    ['a frame that is not JSON', (ch: Awaited<ReturnType<typeof rawChannel>>) => ch.frame('{nope')],
    ['a frame without an id', (ch: Awaited<ReturnType<typeof rawChannel>>) => ch.frame({ d: DIGEST, x: 0 })],
    ['a frame longer than MAX_SEED_REQUEST_BYTES', (ch: Awaited<ReturnType<typeof rawChannel>>) => ch.frame({ i: 1, d: DIGEST, x: 0, pad: 'x'.repeat(MAX_SEED_REQUEST_BYTES) })],
    ['a prototype-poisoned frame', (ch: Awaited<ReturnType<typeof rawChannel>>) => ch.frame('{"i":1,"__proto__":{"x":1}}')],
    ['more than MAX_SEED_QUEUED requests waiting', (ch: Awaited<ReturnType<typeof rawChannel>>) => {
      for (let i = 0; i <= MAX_SEED_QUEUED + 1; i++) ch.frame({ i, d: DIGEST, x: 0 });
    }],
  ])('closes on %s', async (_what, send) => {
    const h = await harness({ gated: true });
    const ch = await rawChannel(h.port, await h.register('p1'));
    send(ch);
    await ch.closed;
  });

  it("pays for one of the peer's calls with each piece sent whole on a lease of its own, once, over the channel as over the route", async () => {
    const h = await harness({ perSecond: 10 });
    const token = await h.register('p1');
    const auth = { authorization: `Bearer ${token}` };
    const sync = await h.app.inject({ method: 'POST', url: `/api/v1/tasks/${DIGEST}/sync`, headers: auth, payload: { have: [], wantSeed: 1, badParents: [] } });
    const [leased] = (sync.json() as { seedGrants: number[] }).seedGrants;
    expect(leased).toBe(0);
    const beat = () => h.app.inject({ method: 'POST', url: '/api/v1/peers/self/heartbeat', headers: auth, payload: {} });
    while ((await beat()).statusCode === 200);
    const ch = await rawChannel(h.port, token);
    ch.frame({ i: 1, d: DIGEST, x: 0 });
    await ch.answered(1);
    expect((await beat()).statusCode).toBe(200);
    expect((await beat()).statusCode).toBe(429);
    // Again, and a piece on no lease: nothing more.
    ch.frame({ i: 2, d: DIGEST, x: 0 });
    ch.frame({ i: 3, d: DIGEST, x: 1 });
    await ch.answered(3);
    expect((await beat()).statusCode).toBe(429);
  });

  it("times only the first piece in line: one streaming longer than the timeout and the one queued behind it both come", async () => {
    const h = await harness({ gated: true });
    const token = await h.register('p1');
    const channels = new SeedChannels({ timeoutMs: 300 });
    clientsClose.push(() => channels.close());
    const take = async (index: number): Promise<Buffer> => {
      const a = await channels.piece(h.url, token, DIGEST, index, AbortSignal.timeout(5_000));
      if (!a || !('answer' in a)) throw new Error(`no piece ${index}`);
      const parts: Buffer[] = [];
      for await (const c of a.answer.body) parts.push(c);
      return Buffer.concat(parts);
    };
    const both = Promise.all([take(0), take(1)]);
    await new Promise((r) => setTimeout(r, 700));
    h.release(0);
    h.release(1);
    const [a, b] = await both;
    expect(a.equals(pieceBytes(0)) && b.equals(pieceBytes(1))).toBe(true);
  });

  it('a reader that stops with bytes held lets the channel read on, and its signal keeps no listener', async () => {
    const h = await harness();
    const token = await h.register('p1');
    const channels = new SeedChannels({ timeoutMs: 5_000 });
    clientsClose.push(() => channels.close());
    const signal = AbortSignal.timeout(10_000);
    const first = await channels.piece(h.url, token, BIG, 0, signal);
    if (!first || !('answer' in first)) throw new Error('no piece');
    // The piece's bytes pile up past what a channel lets a reader hold; it then reads one chunk and stops.
    await new Promise((r) => setTimeout(r, 200));
    for await (const c of first.answer.body) {
      expect(c.length).toBeGreaterThan(0);
      break;
    }
    const second = await channels.piece(h.url, token, BIG, 1, signal);
    if (!second || !('answer' in second)) throw new Error('no piece');
    const parts: Buffer[] = [];
    for await (const c of second.answer.body) parts.push(c);
    expect(Buffer.concat(parts).equals(BIG_BYTES.subarray(BIG_META.pieceSize))).toBe(true);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('a slow reader of a piece whose end came lets the channel read on: the next piece comes in time', async () => {
    // A fake supernode that sends piece 1 (over what a reader may hold) and its end in one go, then piece 2 when asked.
    const n1 = (1 << 20) + 4096;
    let asked = 0;
    const url = await fakeSupernode((text, sock) => {
      const before = asked;
      asked += (text.match(/"x":/g) ?? []).length;
      if (before < 1 && asked >= 1) sock.write(wholeAnswer(1, Buffer.alloc(n1)));
      if (before < 2 && asked >= 2) setTimeout(() => sock.write(wholeAnswer(2, Buffer.alloc(10))), 100);
    });
    const channels = new SeedChannels({ timeoutMs: 400 });
    clientsClose.push(() => channels.close());
    const first = channels.piece(url, 'token', DIGEST, 0, AbortSignal.timeout(10_000));
    const second = channels.piece(url, 'token', DIGEST, 1, AbortSignal.timeout(10_000)).then(async (a) => {
      if (!a || !('answer' in a)) return 'no answer';
      let n = 0;
      for await (const c of a.answer.body) n += c.length;
      return `${n} bytes`;
    }, (err: Error) => err.message);
    const a1 = await first;
    // The reader of piece 1 takes nothing for a second (a paced download): piece 2 still comes.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await second).toBe('10 bytes');
    let n = 0;
    if (a1 && 'answer' in a1) for await (const c of a1.answer.body) n += c.length;
    expect(n).toBe(n1);
  });

  it('puts one piece on the wire at a time: the next is asked once the answer before it is over; one given up before it was asked is never asked', async () => {
    const frames: string[] = [];
    const url = await fakeSupernode((text, sock) => {
      frames.push(...(text.match(/\{[^}]*\}/g) ?? []));
      const asked = /"i":(\d+),"d"/.exec(text);
      // Piece 1 is answered after a while; piece 3 at once.
      if (asked?.[1] === '1') setTimeout(() => sock.write(wholeAnswer(1, Buffer.from('abc'))), 200);
      if (asked?.[1] === '3') sock.write(wholeAnswer(3, Buffer.from('xyz')));
    });
    const channels = new SeedChannels({ timeoutMs: 5_000 });
    clientsClose.push(() => channels.close());
    const read = async (p: Promise<unknown>): Promise<string> => {
      const a = (await p) as { answer?: { body: AsyncIterable<Buffer> } };
      const parts: Buffer[] = [];
      for await (const c of a.answer!.body) parts.push(c);
      return Buffer.concat(parts).toString();
    };
    const gaveUp = new AbortController();
    const first = read(channels.piece(url, 'token', DIGEST, 0, AbortSignal.timeout(5_000)));
    const second = channels.piece(url, 'token', DIGEST, 1, gaveUp.signal).then(() => 'answered', (err: Error) => err.message);
    const third = read(channels.piece(url, 'token', DIGEST, 2, AbortSignal.timeout(5_000)));
    await new Promise((r) => setTimeout(r, 100));
    expect(frames).toEqual([`{"i":1,"d":"${DIGEST}","x":0}`]);
    gaveUp.abort(new PollenError('ERR_ABORTED', 'another copy came'));
    expect(await second).toBe('another copy came');
    expect([await first, await third]).toEqual(['abc', 'xyz']);
    expect(frames).toEqual([`{"i":1,"d":"${DIGEST}","x":0}`, `{"i":3,"d":"${DIGEST}","x":2}`]);
  });

  it('keeps fewer requests in flight than the supernode takes: the rest go over HTTP, and nothing closes', async () => {
    const h = await harness({ gated: true });
    const client = await peerClient(h.url);
    const asked = Array.from({ length: MAX_SEED_QUEUED + 20 }, () =>
      client.seedPiece(h.url, DIGEST, 0, AbortSignal.timeout(20_000)).then(async (a) => {
        const parts: Buffer[] = [];
        for await (const c of a.body) parts.push(c);
        return Buffer.concat(parts).equals(pieceBytes(0));
      }),
    );
    await new Promise((r) => setTimeout(r, 200));
    h.release(0);
    expect((await Promise.all(asked)).every(Boolean)).toBe(true);
    expect(client.seedPieces.channel).toBe(MAX_SEED_QUEUED);
    expect(client.seedPieces.http).toBe(20);
  });

  it("gives up a stalled piece through the transfer's own fetch (its stall watchdog), and the next piece comes", async () => {
    const h = await harness({ gated: true });
    const client = await peerClient(h.url);
    const ask = (index: number) => fetchSeedPiece(client, { supernode: h.url, digest: DIGEST, index, length: pieceBytes(index).length, stallMs: 300, signal: AbortSignal.timeout(10_000) });
    const stalled = ask(0).then(
      () => 'came',
      (err: Error) => err.message,
    );
    const next = ask(1);
    h.release(1);
    expect(await stalled).toMatch(/stalled/);
    expect(Buffer.concat((await next).chunks).equals(pieceBytes(1))).toBe(true);
  });

  it("is where the peer's client fetches seed pieces, in order, a piece it gives up failing alone", async () => {
    const h = await harness({ gated: true });
    const client = await peerClient(h.url);
    const collect = async (body: AsyncIterable<Buffer>): Promise<Buffer> => {
      const parts: Buffer[] = [];
      for await (const c of body) parts.push(c);
      return Buffer.concat(parts);
    };
    const gaveUp = new AbortController();
    const first = client.seedPiece(h.url, DIGEST, 0, AbortSignal.timeout(5_000)).then(async (a) => ({ bytes: await collect(a.body), hash: a.pieceHash() }));
    const second = client.seedPiece(h.url, DIGEST, 1, gaveUp.signal).then(
      () => 'answered',
      (err: Error) => err.message,
    );
    const third = client.seedPiece(h.url, DIGEST, 2, AbortSignal.timeout(5_000)).then(async (a) => ({ bytes: await collect(a.body), hash: a.pieceHash() }));
    gaveUp.abort(new PollenError('ERR_ABORTED', 'another copy came'));
    h.release(0);
    h.release(2);
    expect(await second).toBe('another copy came');
    const [a, c] = await Promise.all([first, third]);
    expect(a.bytes.equals(pieceBytes(0)) && c.bytes.equals(pieceBytes(2))).toBe(true);
    expect([a.hash, c.hash]).toEqual([hashOf(0), hashOf(2)]);
    // Served: the two pieces sent whole, not the one given up.
    await expect.poll(() => h.served).toEqual([pieceBytes(0).length, pieceBytes(2).length]);
    // (The piece given up may have gone before its request was written.)
    expect(client.seedPieces.http).toBe(0);
    expect(client.seedPieces.channel).toBeGreaterThanOrEqual(2);
    // Refusals read as the route's.
    await expect(client.seedPiece(h.url, DIGEST, 9, AbortSignal.timeout(5_000))).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  });
});
