// The forward proxy's CONNECT tunnels are bounded: at most maxTunnels at once (the next client gets
// 503 with an OCI body and nothing is dialled for it), and a tunnel idle for tunnelIdleMs is closed.
// Real sockets on loopback: a node http server with the proxy attached, and a TCP echo server as
// the configured registry.
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ForwardProxy } from '../../peer/mirror/forward-proxy.ts';
import { Upstreams } from '../../peer/mirror/upstreams.ts';
import { waitFor } from '../helpers/tools.ts';

const REGISTRY = 'registry.test:5000';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A TCP echo server standing for the registry, counting the connections that reached it. */
async function echoServer(): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return { port: (server.address() as AddressInfo).port, connections: () => connections };
}

async function proxyServer(registryPort: number, options: { maxTunnels: number; tunnelIdleMs: number }): Promise<{ port: number; proxy: ForwardProxy }> {
  const upstreams = new Upstreams({ defaultUpstream: `http://127.0.0.1:${registryPort}`, registries: new Map([[REGISTRY, `http://127.0.0.1:${registryPort}`]]), credentials: new Map() });
  const proxy = new ForwardProxy({ upstreams, logger: pino({ level: 'silent' }) }, options);
  const server: Server = createHttpServer();
  proxy.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    proxy.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { port: (server.address() as AddressInfo).port, proxy };
}

/** CONNECT through the proxy; resolves with the status, the response head and body, and the socket (left open on 200). */
function tunnel(port: number): Promise<{ status: number; text: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`CONNECT ${REGISTRY} HTTP/1.1\r\nHost: ${REGISTRY}\r\n\r\n`));
    let text = '';
    const done = (): void => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, socket });
    socket.on('data', function onData(c: Buffer) {
      text += c.toString('latin1');
      if (/^HTTP\/1\.1 200/.test(text) && text.includes('\r\n\r\n')) {
        socket.off('data', onData);
        done();
      }
    });
    socket.on('error', reject);
    socket.on('close', done);
    cleanups.push(() => void socket.destroy());
  });
}

describe('the forward proxy’s CONNECT tunnels', () => {
  it('holds at most maxTunnels open: the next client gets 503 with an OCI body and nothing is dialled; a closed tunnel frees its place', async () => {
    const registry = await echoServer();
    const { port, proxy } = await proxyServer(registry.port, { maxTunnels: 2, tunnelIdleMs: 60_000 });
    const first = await tunnel(port);
    const second = await tunnel(port);
    expect([first.status, second.status]).toEqual([200, 200]);
    const third = await tunnel(port);
    expect(third.status).toBe(503);
    const body = JSON.parse(third.text.slice(third.text.indexOf('\r\n\r\n') + 4)) as { errors: Array<{ code: string; detail: { pollenCode: string } }> };
    expect(body.errors[0]).toMatchObject({ code: 'UNAVAILABLE', detail: { pollenCode: 'ERR_PROXY_BUSY' } });
    expect(registry.connections()).toBe(2);
    // The tunnels still carry bytes both ways.
    const echoed = new Promise<string>((resolve) => first.socket.once('data', (c: Buffer) => resolve(c.toString())));
    first.socket.write('ping');
    expect(await echoed).toBe('ping');
    second.socket.destroy();
    await waitFor(async () => proxy.openTunnels === 1, "the closed tunnel to be let go", 5_000);
    expect((await tunnel(port)).status).toBe(200);
    expect(registry.connections()).toBe(3);
  });

  it('closes a tunnel that carried no byte either way for tunnelIdleMs, and keeps one that did', async () => {
    const registry = await echoServer();
    const { port, proxy } = await proxyServer(registry.port, { maxTunnels: 8, tunnelIdleMs: 300 });
    const idle = await tunnel(port);
    const busy = await tunnel(port);
    const idleClosed = new Promise<void>((resolve) => idle.socket.once('close', () => resolve()));
    const started = Date.now();
    // The busy tunnel exchanges a byte every 100 ms for 900 ms.
    for (let i = 0; i < 9; i++) {
      const echoed = new Promise<void>((resolve) => busy.socket.once('data', () => resolve()));
      busy.socket.write('x');
      await echoed;
      await new Promise((r) => setTimeout(r, 100));
    }
    await idleClosed;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(busy.socket.destroyed).toBe(false);
    expect(proxy.openTunnels).toBe(1);
  });
});
