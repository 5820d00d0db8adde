// How the supernode's end of the seed channel (supernode/http/seed-channel.ts) writes an answer: a
// piece the seed holds whole goes in one write per chunk, its head in that of its first bytes and
// its end in that of its last; a piece still coming from the registry has its head written at once
// (the peer times the wait for it), its end on its own once its proof is known; a piece given up
// before its first bytes went is answered as given up (499), never with a head of 200; one whose
// body ends before its first bytes gets its head and an end that says it was cut short.
import { Duplex } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { PollenError } from '../../../../src/errors.ts';
import { GIVEN_UP_STATUS, SeedAnswerReader, type SeedAnswerEnd, type SeedAnswerHead } from '../../../../src/p2p/seed-channel-frames.ts';
import { encodeFrame } from '../../../../src/p2p/sync-channel-frames.ts';
import type { PooledBody } from '../../../../src/pooled-body.ts';
import { serveSeedChannel, type SeedPieceReply } from '../../../../supernode/http/seed-channel.ts';

const HASH = 'ab'.repeat(32);
const DIGEST = `sha256:${'cd'.repeat(32)}`;

/** A socket that records its writes: each entry one flush (a corked run of writes is one). */
class RecordingSocket extends Duplex {
  readonly flushes: Buffer[][] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.flushes.push([Buffer.from(chunk)]);
    cb();
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: () => void): void {
    this.flushes.push(chunks.map((c) => Buffer.from(c.chunk)));
    cb();
  }
}

/** A piece of `chunks` chunks of 1,000 bytes; `wait` holds its first chunk back until it resolves. */
function pieceOf(chunks: number, proofKnown: boolean, wait?: Promise<void>): SeedPieceReply {
  const body: PooledBody = {
    pooled: true,
    async *chunks() {
      for (let k = 0; k < chunks; k++) {
        if (k === 0 && wait) await wait;
        yield Buffer.alloc(1000, k);
      }
    },
  };
  // Not held whole: no proof at the head, one once the bytes went (as the seed learns it from the registry).
  let asked = 0;
  const proof = proofKnown ? () => ({ hash: HASH }) : () => (asked++ === 0 ? undefined : { hash: HASH });
  return { length: chunks * 1000, body, proof, hashList: () => undefined, sentWhole: () => {} };
}

/** Serves one request for piece 0 with `piece`; the flushes and the answer they carry. */
async function serve(piece: SeedPieceReply | ((signal: AbortSignal) => Promise<SeedPieceReply>), cancelAfterMs?: number) {
  const socket = new RecordingSocket();
  serveSeedChannel(socket, 't', 'p1', { logger: pino({ level: 'silent' }), peerOf: () => 'p1', seedPiece: async (_p, _d, _i, signal) => (typeof piece === 'function' ? piece(signal) : piece) }, Buffer.alloc(0), 10_000);
  socket.push(encodeFrame(JSON.stringify({ i: 1, d: DIGEST, x: 0 })));
  if (cancelAfterMs !== undefined) setTimeout(() => socket.push(encodeFrame(JSON.stringify({ i: 1, c: 1 }))), cancelAfterMs);
  const heads: SeedAnswerHead[] = [];
  const ends: SeedAnswerEnd[] = [];
  let bytes = 0;
  /** Each flush's number of writes. */
  const flushes: number[] = [];
  const reader = new SeedAnswerReader({ head: (h) => heads.push(h), data: (b) => (bytes += b.length), end: (e) => ends.push(e) });
  for (let t = 0; t < 200 && ends.length + heads.filter((h) => h.s !== 200).length === 0; t++) {
    await new Promise((r) => setTimeout(r, 5));
    for (const f of socket.flushes.splice(0)) {
      reader.push(Buffer.concat(f));
      flushes.push(f.length);
    }
  }
  return { flushes, heads, ends, bytes };
}

describe("seed channel answers' writes", () => {
  it('writes a piece the seed holds whole in one write per chunk: its head with its first bytes, its end with its last', async () => {
    const a = await serve(pieceOf(3, true));
    expect(a.heads).toEqual([{ i: 1, s: 200, n: 3000, h: HASH }]);
    expect(a.bytes).toBe(3000);
    expect(a.ends).toEqual([{ i: 1 }]);
    // Three flushes: [head + frame head, bytes], [frame head, bytes], [frame head, bytes, end].
    expect(a.flushes).toEqual([2, 2, 3]);
  });

  it('writes the head of a piece still coming from the registry at once, and its end with its proof on its own', async () => {
    let go!: () => void;
    const wait = new Promise<void>((r) => (go = r));
    const piece = pieceOf(2, false, wait);
    const answered = serve(piece);
    setTimeout(go, 50);
    const a = await answered;
    expect(a.heads).toEqual([{ i: 1, s: 200, n: 2000 }]);
    expect(a.ends).toEqual([{ i: 1, h: HASH }]);
    expect(a.flushes).toEqual([1, 2, 2, 1]);
  });

  it('answers a piece the seed holds whole, given up before its first bytes went, as given up', async () => {
    let go!: () => void;
    const wait = new Promise<void>((r) => (go = r));
    // Given up while its first bytes are read from disk.
    const a = serve(pieceOf(2, true, wait), 20);
    setTimeout(go, 60);
    const { heads, ends, bytes } = await a;
    expect(heads.map((h) => h.s)).toEqual([GIVEN_UP_STATUS]);
    expect(ends).toEqual([]);
    expect(bytes).toBe(0);
  });

  it('says a piece held whole whose body ended before its first bytes was cut short, with its head first', async () => {
    const empty: PooledBody = { pooled: true, async *chunks() {} };
    const { heads, ends, bytes } = await serve({ length: 1000, body: empty, proof: () => ({ hash: HASH }), hashList: () => undefined, sentWhole: () => {} });
    expect(heads).toEqual([{ i: 1, s: 200, n: 1000, h: HASH }]);
    expect(ends).toEqual([{ i: 1, x: 1 }]);
    expect(bytes).toBe(0);
  });

  it('refuses with the OCI body of what the route would refuse', async () => {
    const { heads } = await serve(async () => {
      throw new PollenError('ERR_NOT_FOUND', 'no such piece');
    });
    expect(heads[0]).toMatchObject({ i: 1, s: 404 });
  });
});
