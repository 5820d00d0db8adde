// The seed channel's reads (peer/p2p/seed-channel.ts): the socket reads into one reused buffer, and
// a piece's bytes are copied out into blocks of the wire's pool, handed on whole however the reads
// split them; the blocks go back to the pool once their reader gives them back, and those of a
// piece given up part way (held by the channel or not taken yet) go back by themselves.
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PollenError } from '../../../../src/errors.ts';
import { BLOCK_BYTES } from '../../../../src/p2p/metainfo.ts';
import { dataFrameHead } from '../../../../src/p2p/seed-channel-frames.ts';
import { lentBlocks } from '../../../../src/p2p/wire-blocks.ts';
import { SeedChannels } from '../../../../peer/p2p/seed-channel.ts';
import { releaseChunks } from '../../../../peer/p2p/seed-piece.ts';
import { answerEnd, answerHead, fakeSeedSupernode } from '../../../helpers/seed-channel-fake.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

/** Writes `bytes` in `parts` writes, each on a turn of its own (so the peer reads them apart). */
async function dribble(sock: net.Socket, bytes: Buffer, parts: number): Promise<void> {
  const step = Math.ceil(bytes.length / parts);
  for (let at = 0; at < bytes.length; at += step) {
    sock.write(bytes.subarray(at, at + step));
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * A fake supernode answering request k (1, 2, ...) with `pieces[k - 1]`: head, its bytes in 37
 * writes, end; with `hold`, the first answer's bytes past `hold.after` wait for `hold.until`. And
 * the peer's channels to it.
 */
async function channelTo(pieces: Buffer[], hold?: { after: number; until: Promise<void> }): Promise<{ url: string; channels: SeedChannels }> {
  let asked = 0;
  const fake = await fakeSeedSupernode((text, sock) => {
    for (const _ of text.match(/"x":/g) ?? []) {
      const i = ++asked;
      const bytes = pieces[i - 1]!;
      void (async () => {
        sock.write(Buffer.concat([answerHead(i, bytes.length), dataFrameHead(bytes.length)]));
        if (i === 1 && hold) {
          await dribble(sock, bytes.subarray(0, hold.after), 13);
          await hold.until;
          await dribble(sock, bytes.subarray(hold.after), 13);
        } else {
          await dribble(sock, bytes, 37);
        }
        sock.write(answerEnd(i));
      })();
    }
  });
  const channels = new SeedChannels({ timeoutMs: 5_000 });
  closers.push(fake.close, () => channels.close());
  return { url: fake.url, channels };
}

async function bodyOf(channels: SeedChannels, url: string, index: number, signal: AbortSignal = AbortSignal.timeout(10_000)): Promise<AsyncIterable<Buffer>> {
  const a = await channels.piece(url, 'token', DIGEST, index, signal);
  if (!a || a.status !== 200 || !('answer' in a)) throw new Error(`no piece: ${JSON.stringify(a)}`);
  return a.answer.body;
}

describe('seed channel reads', () => {
  it("hands a piece's bytes on in whole blocks of the wire's pool, however the reads split them, and reuses those given back", async () => {
    const first = randomBytes(2 * BLOCK_BYTES + BLOCK_BYTES / 2);
    const second = randomBytes(BLOCK_BYTES + 1);
    const { url, channels } = await channelTo([first, second]);
    const chunks: Buffer[] = [];
    for await (const c of await bodyOf(channels, url, 0)) chunks.push(c);
    expect(chunks.map((c) => c.length)).toEqual([BLOCK_BYTES, BLOCK_BYTES, BLOCK_BYTES / 2]);
    expect(Buffer.concat(chunks).equals(first)).toBe(true);
    const lent = lentBlocks();
    releaseChunks(chunks);
    expect(lentBlocks()).toBe(lent - 3);
    const again: Buffer[] = [];
    for await (const c of await bodyOf(channels, url, 1)) again.push(c);
    expect(again.map((c) => c.length)).toEqual([BLOCK_BYTES, 1]);
    expect(Buffer.concat(again).equals(second)).toBe(true);
    // Its blocks are two of those given back.
    expect(again.every((c) => chunks.some((k) => k.buffer === c.buffer))).toBe(true);
    releaseChunks(again);
    expect(lentBlocks()).toBe(lent - 3);
  });

  it('gives back the blocks of a piece given up part way, those the channel held and those not taken', async () => {
    const big = randomBytes(3 * BLOCK_BYTES);
    const next = randomBytes(1000);
    let rest!: () => void;
    // The piece's first 2.5 blocks come; the rest waits until it has been given up.
    const { url, channels } = await channelTo([big, next], { after: 2 * BLOCK_BYTES + BLOCK_BYTES / 2, until: new Promise<void>((r) => (rest = r)) });
    const lent = lentBlocks();
    const gaveUp = new AbortController();
    const taken: Buffer[] = [];
    const reading = (async () => {
      for await (const c of await bodyOf(channels, url, 0, gaveUp.signal)) {
        taken.push(c);
        // The reader takes one block and waits while the second is queued and the third filled half.
        while (lentBlocks() < lent + 3) await new Promise((r) => setTimeout(r, 5));
        gaveUp.abort(new PollenError('ERR_ABORTED', 'another copy came'));
      }
    })().catch((err: Error) => err.message);
    expect(await reading).toBe('another copy came');
    // Given up: the queued block and the half-filled one are back; the one taken is the reader's.
    expect(lentBlocks()).toBe(lent + 1);
    rest();
    // The next piece still comes whole once the given-up one's bytes have drained.
    const parts: Buffer[] = [];
    for await (const c of await bodyOf(channels, url, 1)) parts.push(c);
    expect(Buffer.concat(parts).equals(next)).toBe(true);
    releaseChunks(parts);
    releaseChunks(taken);
    // All back: the one the reader took (and gave back), and those the channel held.
    expect(taken.length).toBeGreaterThan(0);
    expect(lentBlocks()).toBe(lent);
  });
});
