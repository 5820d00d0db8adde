import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.ts';
import { sha256Digest } from '../../../../src/digest.ts';
import { Bitfield } from '../../../../src/p2p/bitfield.ts';
import { holdingBits, isLayout, layoutFor, MAX_PIECES, pieceCountFor, pieceRange, pieceSizeFor, pieceSizeForSwarm, namedLayout, DEFAULT_PIECE_BYTES, SMALL_PIECE_BYTES, SMALL_PIECES_FROM_PEERS } from '../../../../src/p2p/metainfo.ts';
import { BlockPool } from '../../../../src/p2p/block-pool.ts';
import { TokenBucket } from '../../../../src/p2p/token-bucket.ts';
import { WireGuard, wrongFixedLength } from '../../../../src/p2p/wire-guard.ts';
import { pickPiece } from '../../../../peer/p2p/piece-picker.ts';

describe('piece layout', () => {
  it('uses DEFAULT_PIECE_BYTES pieces, one piece for a small blob, and larger pieces so a blob has at most MAX_PIECES', () => {
    expect(pieceSizeFor(10)).toBe(DEFAULT_PIECE_BYTES);
    expect(layoutFor(sha256Digest('x'), 10).pieceCount).toBe(1);
    expect(layoutFor(sha256Digest('x'), 0).pieceCount).toBe(1);
    const huge = 10 * 1024 ** 3;
    const layout = layoutFor(sha256Digest('x'), huge);
    expect(layout.pieceCount).toBeLessThanOrEqual(MAX_PIECES);
    expect(layout.pieceSize).toBe(16 * 1024 * 1024);
    expect(pieceRange(10 << 20, 4 << 20, 2)).toEqual({ start: 8 << 20, length: 2 << 20 });
  });

  it('a cluster of SMALL_PIECES_FROM_PEERS live peers or more gets the small layout, where a blob has one; both are layouts, nothing else is', () => {
    const MiB = 1 << 20;
    expect(pieceSizeForSwarm(64 * MiB, SMALL_PIECES_FROM_PEERS - 1)).toBe(DEFAULT_PIECE_BYTES);
    expect(pieceSizeForSwarm(64 * MiB, SMALL_PIECES_FROM_PEERS)).toBe(SMALL_PIECE_BYTES);
    expect(pieceSizeForSwarm(64 * MiB, 3, 3)).toBe(SMALL_PIECE_BYTES);
    // One layout only: a blob of one small piece, and one so large that both bases double alike.
    expect(pieceSizeForSwarm(100 * 1024, 10_000)).toBe(pieceSizeFor(100 * 1024));
    expect(pieceSizeForSwarm(600 * MiB, 10_000)).toBe(pieceSizeFor(600 * MiB));
    expect(pieceSizeForSwarm(300 * 1024, 10_000)).toBe(SMALL_PIECE_BYTES);
    for (const size of [0, 10, 300 * 1024, 64 * MiB, 400 * MiB, 600 * MiB]) {
      expect(isLayout(size, pieceSizeFor(size))).toBe(true);
      expect(isLayout(size, pieceSizeForSwarm(size, 10_000))).toBe(true);
      expect(isLayout(size, pieceSizeFor(size) * 2)).toBe(false);
      expect(isLayout(size, 4096)).toBe(false);
      // Two layouts of a blob never have the same piece count (what a peer's kept proofs go by).
      const a = pieceSizeFor(size);
      const b = pieceSizeForSwarm(size, 10_000);
      expect(a === b || pieceCountFor(size, a) !== pieceCountFor(size, b)).toBe(true);
      // Proofs bind the piece size of the small layout only.
      expect(namedLayout(size, a)).toBeUndefined();
      expect(namedLayout(size, b)).toBe(a === b ? undefined : b);
    }
  });

  it('a holding counts as sent in its own layout, as whole in the other only when whole, else as nothing (a download in the other layout)', () => {
    const ratio = DEFAULT_PIECE_BYTES / SMALL_PIECE_BYTES;
    const size = 64 * SMALL_PIECE_BYTES;
    const small = { size, pieceSize: SMALL_PIECE_BYTES, pieceCount: 64 };
    const dflt = { size, pieceSize: DEFAULT_PIECE_BYTES, pieceCount: 64 / ratio };
    const some = new Bitfield(64);
    some.set(1);
    some.set(60);
    expect([...holdingBits(small, { pieces: some.toBase64(), pieceSize: SMALL_PIECE_BYTES }).indexes()]).toEqual([1, 60]);
    // A whole blob (reported in the default layout, naming none) is whole in the small one, and back.
    expect(holdingBits(small, { pieces: Bitfield.full(64 / ratio).toBase64() }).count).toBe(64);
    expect(holdingBits(dflt, { pieces: Bitfield.full(64 / ratio).toBase64() }).count).toBe(64 / ratio);
    expect(holdingBits(dflt, { pieces: Bitfield.full(64).toBase64(), pieceSize: SMALL_PIECE_BYTES }).count).toBe(64 / ratio);
    const partial = new Bitfield(64 / ratio);
    partial.set(0);
    expect(holdingBits(small, { pieces: partial.toBase64() }).count).toBe(0);
    expect(holdingBits(dflt, { pieces: some.toBase64(), pieceSize: SMALL_PIECE_BYTES }).count).toBe(0);
    // A blob of 2 default pieces is 2 x ratio small ones, one byte of bitfield either way. Two small
    // pieces of a small-layout download have the bytes of the whole default bitfield: its piece size tells them apart.
    const two = { size: 2 * DEFAULT_PIECE_BYTES, pieceSize: SMALL_PIECE_BYTES, pieceCount: 2 * ratio };
    const firstTwo = new Bitfield(2 * ratio);
    firstTwo.set(0);
    firstTwo.set(1);
    expect(firstTwo.toBase64()).toBe(Bitfield.full(2).toBase64());
    expect([...holdingBits(two, { pieces: firstTwo.toBase64(), pieceSize: SMALL_PIECE_BYTES }).indexes()]).toEqual([0, 1]);
    expect(holdingBits(two, { pieces: Bitfield.full(2).toBase64() }).count).toBe(2 * ratio);
    expect(holdingBits({ ...two, pieceSize: DEFAULT_PIECE_BYTES, pieceCount: 2 }, { pieces: firstTwo.toBase64(), pieceSize: SMALL_PIECE_BYTES }).count).toBe(0);
    // A piece size that is no layout of the blob holds nothing.
    expect(holdingBits(small, { pieces: Bitfield.full(16).toBase64(), pieceSize: 4 * DEFAULT_PIECE_BYTES }).count).toBe(0);
  });
});

describe('Bitfield', () => {
  it('uses BitTorrent bit order, counts, and clears spare bits a peer sent', () => {
    const b = new Bitfield(10, new Uint8Array([0b10100000, 0xff]));
    expect([...b.indexes()]).toEqual([0, 2, 8, 9]);
    expect(b.count).toBe(4);
    expect(b.set(1)).toBe(true);
    expect(b.set(1)).toBe(false);
    expect(b.set(10)).toBe(false);
    expect(b.prefixLength()).toBe(3);
    expect(Bitfield.fromBase64(10, b.toBase64()).count).toBe(5);
  });

  it('the prefix of held pieces grows with set and shrinks with clear', () => {
    const b = new Bitfield(12);
    for (const i of [0, 1, 2, 3, 4]) b.set(i);
    expect(b.prefixLength()).toBe(5);
    b.clear(2);
    expect(b.prefixLength()).toBe(2);
    b.set(6);
    b.set(2);
    expect(b.prefixLength()).toBe(5);
    b.set(5);
    expect(b.prefixLength()).toBe(7);
    for (let i = 7; i < 12; i++) b.set(i);
    expect(b.prefixLength()).toBe(12);
    b.clear(0);
    expect(b.prefixLength()).toBe(0);
  });
});

describe('TokenBucket', () => {
  it('lets the burst through at once and the rest at the configured rate', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ clock }, { bytesPerSecond: 1000, burstBytes: 1000 });
    let done = 0;
    void bucket.take(1000).then(() => done++);
    void bucket.take(500).then(() => done++);
    await Promise.resolve();
    expect(done).toBe(1);
    clock.advance(400);
    await Promise.resolve();
    expect(done).toBe(1);
    clock.advance(100);
    await Promise.resolve();
    expect(done).toBe(2);
  });
});

describe('WireGuard', () => {
  it('tells a fixed-length message of another length (a short have, a choke with a payload) from a well-formed one', () => {
    const frame = (...bytes: number[]): Buffer => Buffer.concat([Buffer.from([0, 0, 0, bytes.length]), Buffer.from(bytes)]);
    expect(wrongFixedLength(frame(4, 0, 0, 0, 7))).toBe(false); // have 7
    expect(wrongFixedLength(frame(4, 0))).toBe(true);
    expect(wrongFixedLength(frame(4, 0, 0, 0, 7, 1))).toBe(true);
    expect(wrongFixedLength(frame(0))).toBe(false); // choke
    expect(wrongFixedLength(frame(0, 1))).toBe(true);
    expect(wrongFixedLength(frame(5, 0xff, 0x80))).toBe(false); // a bitfield has no fixed length
    expect(wrongFixedLength(frame(20, 0, 1, 2))).toBe(false); // nor an extended message
  });


  it('reassembles frames split across reads and refuses oversized lengths', () => {
    const g = new WireGuard({ maxMessageBytes: 100 });
    const hs = Buffer.concat([Buffer.from([19]), Buffer.alloc(67)]);
    const msg = Buffer.from([0, 0, 0, 3, 7, 7, 7]);
    const keepAlive = Buffer.alloc(4);
    const all = Buffer.concat([hs, msg, keepAlive]);
    const frames: Buffer[] = [];
    for (let i = 0; i < all.length; i += 5) {
      const out = g.push(all.subarray(i, i + 5));
      expect(typeof out).not.toBe('string');
      frames.push(...(out as Buffer[]));
    }
    expect(frames.map((f) => f.length)).toEqual([68, 7, 4]);
    const big = Buffer.alloc(4);
    big.writeUInt32BE(101);
    expect(g.push(big)).toMatch(/exceeds/);
    expect(new WireGuard({ maxMessageBytes: 100 }).push(Buffer.from('GET / HTTP/1.1'))).toMatch(/handshake/);
  });

  it('gives back exactly the frames that were sent, however the stream is cut into reads', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const sent: Buffer[] = [Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), Buffer.alloc(48, 1)])];
    for (let k = 0; k < 300; k++) {
      const body = Buffer.alloc([0, 1, 13, 300, 5000, 70_000][rand(6)]!, k);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length);
      sent.push(Buffer.concat([len, body]));
    }
    const stream = Buffer.concat(sent);
    // transient: each read lands in one reused buffer (a socket's onread), scribbled over after the
    // push, so any frame handed on as a view of it instead of a copy comes out wrong.
    for (const transient of [false, true]) {
      for (const maxRead of [1, 3, 1448, 65_536, stream.length]) {
        const g = new WireGuard({ maxMessageBytes: 1 << 20 });
        const readBuffer = Buffer.alloc(maxRead);
        const got: Buffer[] = [];
        for (let i = 0; i < stream.length; ) {
          const n = Math.min(1 + rand(maxRead), stream.length - i);
          const read = transient ? readBuffer.subarray(0, n) : stream.subarray(i, i + n);
          if (transient) stream.copy(read, 0, i, i + n);
          const out = g.push(read, transient);
          if (typeof out === 'string') throw new Error(out);
          if (transient) readBuffer.fill(0xee);
          got.push(...out);
          i += n;
        }
        expect(got.length).toBe(sent.length);
        got.forEach((f, k) => expect(f.equals(sent[k]!)).toBe(true));
      }
    }
  });
});

describe('BlockPool', () => {
  it('hands a released buffer out again, once, and ignores buffers it did not lend', () => {
    const pool = new BlockPool({ frameBytes: 32, maxFree: 1 });
    const a = pool.acquire();
    expect(a.length).toBe(32);
    pool.release(Buffer.alloc(32));
    pool.release(a.subarray(13));
    pool.release(a.subarray(13));
    expect(pool.freeCount).toBe(1);
    const b = pool.acquire();
    expect(b.buffer).toBe(a.buffer);
    expect(pool.acquire().buffer).not.toBe(a.buffer);
    // Beyond maxFree a released buffer is left to the garbage collector.
    const c = pool.acquire();
    pool.release(b);
    pool.release(c);
    expect(pool.freeCount).toBe(1);
  });

  it('fills whole-block frames of a WireGuard into pool buffers, other frames not', () => {
    const pool = new BlockPool({ frameBytes: 4 + 20, maxFree: 4 });
    const g = new WireGuard({ maxMessageBytes: 100, pool });
    const handshake = Buffer.alloc(68);
    handshake[0] = 19;
    const frame = (len: number) => Buffer.concat([Buffer.from([0, 0, 0, len]), Buffer.alloc(len, len)]);
    const stream = Buffer.concat([handshake, frame(20), frame(7), frame(20)]);
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i += 5) out.push(...(g.push(stream.subarray(i, i + 5)) as Buffer[]));
    expect(out.map((f) => f.length)).toEqual([68, 24, 11, 24]);
    expect(Buffer.concat(out).equals(stream)).toBe(true);
    pool.release(out[2]!);
    expect(pool.freeCount).toBe(0);
    pool.release(out[1]!.subarray(13));
    pool.release(out[3]!);
    expect(pool.freeCount).toBe(2);
  });
});

describe('pickPiece', () => {
  const base = (have: Bitfield) => ({ have, inFlight: new Map<number, number>(), canGet: () => true, availability: () => 1, mine: new Set<number>(), overdue: () => true });

  it('fetches the head of the blob in order, then the rarest piece', () => {
    const have = new Bitfield(10);
    expect(pickPiece(base(have))).toBe(0);
    const inFlight = new Map([[0, 1], [1, 1]]);
    expect(pickPiece({ ...base(have), inFlight, availability: (i) => (i === 7 ? 0 : 3) })).toBe(7);
  });

  it('breaks a tie between equally rare pieces at random: each is picked about as often, a rarer one always first', () => {
    const have = new Bitfield(12);
    const inFlight = new Map([[0, 1], [1, 1]]);
    // Pieces 4, 7 and 10 are the rarest (1 holder), the rest have 3.
    const availability = (i: number): number => ([4, 7, 10].includes(i) ? 1 : 3);
    let x = 12345;
    const random = (): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296);
    const picks = new Map<number, number>();
    for (let k = 0; k < 3_000; k++) {
      const i = pickPiece({ ...base(have), inFlight, availability, random })!;
      picks.set(i, (picks.get(i) ?? 0) + 1);
    }
    expect([...picks.keys()].sort((a, b) => a - b)).toEqual([4, 7, 10]);
    for (const n of picks.values()) expect(n).toBeGreaterThan(800);
    // Without numbers, the lowest index of the rarest.
    expect(pickPiece({ ...base(have), inFlight, availability })).toBe(4);
    // The head of the blob still comes first, in order.
    expect(pickPiece({ ...base(have), availability, random })).toBe(0);
  });

  it('steps over runs of held pieces without missing the first piece after them', () => {
    const have = new Bitfield(24);
    for (let i = 8; i < 16; i++) have.set(i);
    // 0 and 1 are the head (in flight); 3 and 16 are gettable, 16 rarer.
    const inFlight = new Map([[0, 1], [1, 1]]);
    const canGet = (i: number): boolean => i === 3 || i === 16;
    expect(pickPiece({ ...base(have), inFlight, canGet, availability: (i) => (i === 16 ? 1 : 3) })).toBe(16);
    // Endgame counts the missing pieces on both sides of the run: 2-7 and 16-23 are not requested yet.
    expect(pickPiece({ ...base(have), inFlight, canGet: (i) => i === 0 })).toBeUndefined();
    for (let i = 2; i < 8; i++) inFlight.set(i, 1);
    for (let i = 16; i < 24; i++) inFlight.set(i, 1);
    expect(pickPiece({ ...base(have), inFlight, canGet: (i) => i === 23 })).toBe(23);
  });

  it('in endgame asks a second parent for a piece in flight, never the same parent twice', () => {
    const have = Bitfield.full(3);
    have.clear(2);
    const inFlight = new Map([[2, 1]]);
    expect(pickPiece({ ...base(have), inFlight })).toBe(2);
    expect(pickPiece({ ...base(have), inFlight, mine: new Set([2]) })).toBeUndefined();
    expect(pickPiece({ ...base(have), inFlight: new Map([[2, 2]]) })).toBeUndefined();
  });

  it('in endgame asks no second copy of a piece whose first copy is not late', () => {
    const have = Bitfield.full(4);
    have.clear(1);
    have.clear(3);
    const inFlight = new Map([[1, 1], [3, 1]]);
    expect(pickPiece({ ...base(have), inFlight, overdue: () => false })).toBeUndefined();
    expect(pickPiece({ ...base(have), inFlight, overdue: (i) => i === 3 })).toBe(3);
  });

  it('stays out of endgame while a missing piece is requested nowhere (not offered by anyone yet)', () => {
    const have = Bitfield.full(4);
    have.clear(2);
    have.clear(3);
    // Piece 2 is in flight, piece 3 has no holder yet (the seed has not had it from the registry).
    const inFlight = new Map([[2, 1]]);
    expect(pickPiece({ ...base(have), inFlight, canGet: (i) => i === 2 })).toBeUndefined();
    expect(pickPiece({ ...base(have), inFlight: new Map([[2, 1], [3, 1]]), canGet: (i) => i === 2 })).toBe(2);
  });
});
