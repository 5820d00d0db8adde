// A tiny TCP sender/receiver run inside test-bed hosts to check the harness itself: it moves a known
// number of bytes and reports what it moved and how long the transfer took, as one JSON line.
//   node --import tsx bench/testbed/tcp-probe.ts recv HOST PORT
//   node --import tsx bench/testbed/tcp-probe.ts send HOST PORT BYTES
import { connect, createServer } from 'node:net';

const CHUNK_BYTES = 64 * 1024;

function recv(host: string, port: number): void {
  const server = createServer((sock) => {
    let bytes = 0;
    let first = 0;
    sock.on('data', (d: Buffer) => {
      if (bytes === 0) first = performance.now();
      bytes += d.length;
    });
    sock.on('end', () => {
      process.stdout.write(`${JSON.stringify({ role: 'recv', bytes, ms: performance.now() - first })}\n`);
      sock.end();
      server.close();
    });
  });
  server.listen(port, host, () => process.stdout.write('listening\n'));
}

function send(host: string, port: number, total: number): void {
  const chunk = Buffer.alloc(CHUNK_BYTES, 0x5a);
  let sent = 0;
  const t0 = performance.now();
  const sock = connect(port, host, () => {
    const pump = (): void => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!sock.write(chunk.subarray(0, n))) {
          sock.once('drain', pump);
          return;
        }
      }
      sock.end();
    };
    pump();
  });
  sock.on('close', () => process.stdout.write(`${JSON.stringify({ role: 'send', bytes: sent, ms: performance.now() - t0 })}\n`));
  sock.on('error', (err) => {
    process.stderr.write(`tcp-probe: ${err.message}\n`);
    process.exitCode = 1;
  });
  sock.resume();
}

const [mode, host, port, bytes] = process.argv.slice(2);
if (mode === 'recv' && host && port) recv(host, Number(port));
else if (mode === 'send' && host && port && bytes) send(host, Number(port), Number(bytes));
else {
  process.stderr.write('usage: tcp-probe recv HOST PORT | send HOST PORT BYTES\n');
  process.exitCode = 2;
}
