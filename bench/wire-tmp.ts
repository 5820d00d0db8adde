import { createServer, connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { sha256Digest } from '../src/digest.ts';
import { WireConnection } from '../src/p2p/wire-connection.ts';
const digest = sha256Digest('x');
const block = randomBytes(256 * 1024);
const server = createServer((s) => {
  const c = WireConnection.incoming(s, { peerId: randomBytes(20), secret: '' }, () => true);
  c.on('ready', () => { c.sendBitfield(new Uint8Array(200).fill(255)); c.unchoke(); });
  c.on('request', (_i, _o, l, respond) => respond(null, block.subarray(0, l)));
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const c = WireConnection.outgoing(connect((server.address() as any).port, '127.0.0.1'), { peerId: randomBytes(20), secret: '' }, digest);
await c.ready;
if (c.peerChoking) await new Promise<void>((r) => c.once('unchoke', r));
for (const window of [4, 16, 64]) {
  const t = Date.now(); let n = 0; const total = 160;
  await new Promise<void>((resolve) => {
    let inflight = 0; let sent = 0;
    const go = () => { while (inflight < window && sent < total) { inflight++; sent++; c.request(sent % 100, 0, 256 * 1024).then(() => { inflight--; n++; if (n === total) resolve(); else go(); }); } };
    go();
  });
  console.log('window', window, ((total * 256 * 1024) / 1e6 / ((Date.now() - t) / 1000)).toFixed(0), 'MB/s');
}
c.destroy(); server.close();
