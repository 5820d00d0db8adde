import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BODY_CHUNK_BYTES, writePooledBody, type PooledBody } from '../../../src/pooled-body.ts';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** Serves `body` once per request; resolves with what the client received and how it ended. */
async function fetchBody(body: () => PooledBody, length: number): Promise<{ bytes: Buffer; ended: 'end' | 'error' }> {
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': String(length) });
    void writePooledBody(res, body());
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return new Promise((resolve) => {
    get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ bytes: Buffer.concat(chunks), ended: 'end' }));
      res.on('error', () => resolve({ bytes: Buffer.concat(chunks), ended: 'error' }));
    }).on('error', () => resolve({ bytes: Buffer.alloc(0), ended: 'error' }));
  });
}

describe('writePooledBody', () => {
  it('sends every chunk in order and gives each buffer back once written, so a long body reuses a few', async () => {
    const chunks = 64;
    const seen = new Set<ArrayBufferLike>();
    const body = (): PooledBody => ({
      pooled: true,
      async *chunks(acquire) {
        for (let i = 0; i < chunks; i++) {
          const b = acquire();
          seen.add(b.buffer);
          b.fill(i);
          yield b;
          await new Promise((r) => setTimeout(r, 1)); // the socket catches up now and then
        }
      },
    });
    const { bytes, ended } = await fetchBody(body, chunks * BODY_CHUNK_BYTES);
    expect(ended).toBe('end');
    expect(bytes.length).toBe(chunks * BODY_CHUNK_BYTES);
    for (let i = 0; i < chunks; i++) expect(bytes[i * BODY_CHUNK_BYTES + 7]).toBe(i);
    expect(seen.size).toBeLessThan(chunks / 4);
  });

  it('a read error mid-body fails the connection instead of ending a short body cleanly', async () => {
    const body = (): PooledBody => ({
      pooled: true,
      async *chunks(acquire) {
        yield acquire().fill(1);
        throw new Error('disk gone');
      },
    });
    const { bytes, ended } = await fetchBody(body, 2 * BODY_CHUNK_BYTES);
    expect(ended).toBe('error');
    expect(bytes.length).toBeLessThan(2 * BODY_CHUNK_BYTES);
  });
});
