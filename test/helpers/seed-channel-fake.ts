// A stand-in supernode for the peer's seed channel (peer/p2p/seed-channel.ts): it answers the
// upgrade and lets the test write answer frames as it likes (split, late, malformed).
import net from 'node:net';
import { ANSWER_END, ANSWER_HEAD, dataFrameHead, jsonAnswerFrame, SEED_CHANNEL_PROTOCOL } from '../../src/p2p/seed-channel-frames.ts';

/**
 * Answers the seed channel's upgrade and hands each read after it to `onRequests` (the request
 * frames' text, and the socket to answer on); its URL, and `close` for the end of the test.
 */
export async function fakeSeedSupernode(onRequests: (text: string, sock: net.Socket) => void): Promise<{ url: string; close(): void }> {
  const server = net.createServer((sock) => {
    let head = Buffer.alloc(0);
    sock.on('error', () => {});
    sock.on('data', (c: Buffer) => {
      if (head.indexOf('\r\n\r\n') < 0) {
        head = Buffer.concat([head, c]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        sock.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${SEED_CHANNEL_PROTOCOL}\r\n\r\n`);
        c = head.subarray(end + 4);
      }
      onRequests(c.toString('latin1'), sock);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, close: () => server.close() };
}

/** The head of answer `i`: 200 and `length` bytes to come. */
export const answerHead = (i: number, length: number): Buffer => jsonAnswerFrame(ANSWER_HEAD, JSON.stringify({ i, s: 200, n: length }));

/** The end of answer `i`. */
export const answerEnd = (i: number): Buffer => jsonAnswerFrame(ANSWER_END, JSON.stringify({ i }));

/** One whole answer: head, the bytes in one data frame, end. */
export const wholeAnswer = (i: number, bytes: Buffer): Buffer => Buffer.concat([answerHead(i, bytes.length), dataFrameHead(bytes.length), bytes, answerEnd(i)]);
