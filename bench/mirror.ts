// Single-host mirror benchmark: a real registry, a real `pollen peer`, and curl as the client.
// Side by side in one run (ratios, since machines are noisy):
//   cold: a blob the peer does not hold, through the peer  vs  straight from the registry
//   warm: the peer serving the blob from its store         vs  the registry serving it
//   ttfb: time to first byte of a cold blob through the peer vs the registry's own
// Usage: npm run bench:mirror [-- --size-mib 256 --rounds 3]
import { parseArgs } from 'node:util';
import { PollenProcess } from '../test/helpers/pollen.ts';
import { TestRegistry } from '../test/helpers/registry.ts';
import { OciLayout, randomFileLayer } from '../test/helpers/images.ts';
import { execFileP, requireTool } from '../test/helpers/tools.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface CurlTiming {
  ttfbMs: number;
  totalMs: number;
  bytes: number;
}

async function curlGet(curl: string, url: string): Promise<CurlTiming> {
  const { stdout } = await execFileP(curl, ['-sS', '-o', '/dev/null', '-w', '%{time_starttransfer} %{time_total} %{size_download} %{http_code}', url]);
  const [ttfb, total, size, code] = stdout.trim().split(' ');
  if (code !== '200') throw new Error(`GET ${url} answered ${code}`);
  return { ttfbMs: Number(ttfb) * 1000, totalMs: Number(total) * 1000, bytes: Number(size) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '256' }, rounds: { type: 'string', default: '3' } } });
  const sizeMiB = Number(values['size-mib']);
  const rounds = Number(values.rounds);
  const curl = requireTool('curl', 'curl');
  const registry = await TestRegistry.start();
  const dir = await mkdtemp(join(tmpdir(), 'pollen-bench-'));
  const peers: PollenProcess[] = [];
  try {
    const layer = await randomFileLayer('bench-mirror', sizeMiB * 1024 * 1024);
    const layout = new OciLayout(join(dir, 'img'));
    layout.tag(layout.addImage([layer]), 'v1');
    await layout.save();
    await registry.push(layout.dir, 'v1', 'bench/blob:v1');
    const path = `/v2/bench/blob/blobs/${layer.descriptor.digest}`;
    const direct = `${registry.url}${path}`;
    await curlGet(curl, direct); // the registry's page cache is warm for both sides

    const cold: CurlTiming[] = [];
    const coldDirect: CurlTiming[] = [];
    const warm: CurlTiming[] = [];
    const warmDirect: CurlTiming[] = [];
    for (let r = 0; r < rounds; r++) {
      const peer = await PollenProcess.peer(['--upstream', registry.url, '--log-level', 'warn']);
      peers.push(peer);
      // Prime the access decision so "cold" measures the blob path, not the first HEAD.
      await fetch(`${peer.url}${path}`, { method: 'HEAD' });
      coldDirect.push(await curlGet(curl, direct));
      cold.push(await curlGet(curl, `${peer.url}${path}`));
      warmDirect.push(await curlGet(curl, direct));
      warm.push(await curlGet(curl, `${peer.url}${path}`));
      await peer.stop();
    }
    const mbps = (t: CurlTiming) => t.bytes / 1e6 / (t.totalMs / 1000);
    const result = {
      bench: 'mirror',
      sizeMiB,
      rounds,
      coldPeerMBps: median(cold.map(mbps)),
      coldDirectMBps: median(coldDirect.map(mbps)),
      coldRatio: median(cold.map(mbps)) / median(coldDirect.map(mbps)),
      warmPeerMBps: median(warm.map(mbps)),
      warmDirectMBps: median(warmDirect.map(mbps)),
      warmRatio: median(warm.map(mbps)) / median(warmDirect.map(mbps)),
      coldTtfbPeerMs: median(cold.map((t) => t.ttfbMs)),
      coldTtfbDirectMs: median(coldDirect.map((t) => t.ttfbMs)),
      ttfbExtraMs: median(cold.map((t) => t.ttfbMs)) - median(coldDirect.map((t) => t.ttfbMs)),
    };
    console.log(JSON.stringify(result));
    const f = (n: number) => n.toFixed(1);
    console.log(`\nMirror benchmark: ${sizeMiB} MiB blob, median of ${rounds} rounds (curl client, loopback)\n`);
    console.log('| measure          | through peer | registry direct | ratio (aim)        |');
    console.log('| ---------------- | ------------ | --------------- | ------------------ |');
    console.log(`| cold pull MB/s   | ${f(result.coldPeerMBps).padStart(12)} | ${f(result.coldDirectMBps).padStart(15)} | ${result.coldRatio.toFixed(2).padStart(5)}x (>= 0.90x) |`);
    console.log(`| warm blob MB/s   | ${f(result.warmPeerMBps).padStart(12)} | ${f(result.warmDirectMBps).padStart(15)} | ${result.warmRatio.toFixed(2).padStart(5)}x (>= 1.00x) |`);
    console.log(`| cold TTFB ms     | ${f(result.coldTtfbPeerMs).padStart(12)} | ${f(result.coldTtfbDirectMs).padStart(15)} | +${f(result.ttfbExtraMs)} ms (< +50 ms) |`);
  } finally {
    for (const p of peers) await p.stop();
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
