// Single-host mirror benchmark: a real registry, a real `pollen peer`, and curl as the client.
// Side by side in one run (ratios, since machines are noisy):
//   cold: a blob the peer does not hold, through the peer  vs  straight from the registry
//   warm: the peer serving the blob from its store         vs  the registry serving it
//   ttfb: time to first byte of a cold blob through the peer vs the registry's own
// Two settings: loopback (everything on 127.0.0.1: CPU-bound, the two cores are shared by the
// registry, the peer and curl), and, with --link-mbit, a shaped link (the registry in a network
// namespace whose upload is capped, the peer and curl in another), as a mirror meets a registry
// across a network.
// Usage: npm run bench:mirror -- [--size-mib 256] [--rounds 3] [--link-mbit 1000]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pushImage, startRegistry } from './fanout/registry-daemon.ts';
import { waitHttp } from './fanout/ns-tools.ts';
import { findTool, run } from './testbed/exec.ts';
import { Testbed } from './testbed/testbed.ts';
import { OciLayout, randomFileLayer } from '../test/helpers/images.ts';
import { POLLEN_BIN, PollenProcess } from '../test/helpers/pollen.ts';
import { TestRegistry } from '../test/helpers/registry.ts';
import { requireTool } from '../test/helpers/tools.ts';

interface CurlTiming {
  ttfbMs: number;
  totalMs: number;
  bytes: number;
}

/** Where the registry, the peer and curl run: on loopback, or in test-bed hosts. */
interface Setting {
  name: string;
  registryUrl: string;
  curl(url: string, method?: 'GET' | 'HEAD'): Promise<CurlTiming>;
  startPeer(dataDir: string): Promise<{ url: string; stop(): Promise<void> }>;
  close(): Promise<void>;
}

const CURL_FORMAT = '%{time_starttransfer} %{time_total} %{size_download} %{http_code}';

function parseCurl(stdout: string, url: string): CurlTiming {
  const [ttfb, total, size, code] = stdout.trim().split(' ');
  if (code !== '200') throw new Error(`GET ${url} answered ${code}`);
  return { ttfbMs: Number(ttfb) * 1000, totalMs: Number(total) * 1000, bytes: Number(size) };
}

function curlArgs(url: string, method: 'GET' | 'HEAD'): string[] {
  return ['-sS', '-o', '/dev/null', ...(method === 'HEAD' ? ['-I'] : []), '-w', CURL_FORMAT, url];
}

async function loopbackSetting(layoutDir: string, dir: string): Promise<Setting> {
  const curl = requireTool('curl', 'curl');
  const registry = await TestRegistry.start();
  await registry.push(layoutDir, 'v1', 'bench/blob:v1');
  return {
    name: 'loopback',
    registryUrl: registry.url,
    curl: async (url, method = 'GET') => parseCurl((await run(curl, curlArgs(url, method), { timeoutMs: 300_000 })).toString(), url),
    startPeer: async (dataDir) => {
      const p = await PollenProcess.peer(['--upstream', registry.url, '--log-level', 'warn'], { dataDir: join(dir, dataDir) });
      return { url: p.url, stop: () => p.stop() };
    },
    close: () => registry.stop(),
  };
}

async function shapedSetting(layoutDir: string, linkMbit: number): Promise<Setting> {
  const bed = await Testbed.create([{ name: 'registry', upMbit: linkMbit }, { name: 'client' }]);
  const ip = findTool('ip', 'iproute2');
  const curl = findTool('curl', 'curl');
  const [regHost, client] = [bed.host('registry'), bed.host('client')];
  const registry = await startRegistry(bed, regHost, join(bed.workDir, 'registry'));
  await pushImage(bed, regHost, registry, { layoutDir, repo: 'bench/blob', tag: 'v1', sizeMiB: 0, blobs: [], totalBytes: 0 });
  const inClient = async (url: string, method: 'GET' | 'HEAD' = 'GET') => parseCurl((await run(ip, ['netns', 'exec', client.ns, curl, ...curlArgs(url, method)], { timeoutMs: 300_000 })).toString(), url);
  return {
    name: `${linkMbit} Mbit/s link`,
    registryUrl: `http://${registry.addr}`,
    curl: inClient,
    startPeer: async (dataDir) => {
      const proc = bed.spawn(client, process.execPath, [POLLEN_BIN, 'peer', '--listen', '127.0.0.1:65001', '--data', join(bed.workDir, dataDir), '--upstream', `http://${registry.addr}`, '--log-level', 'warn']);
      // The peer's /healthz is on its metrics listener (--metrics-listen, default 127.0.0.1:65003).
      await waitHttp(bed, client, 'http://127.0.0.1:65003/healthz', 60_000);
      return { url: 'http://127.0.0.1:65001', stop: async () => void (await proc.stop()) };
    },
    close: () => bed.close(),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function measure(setting: Setting, digest: string, rounds: number, sizeMiB: number) {
  const path = `/v2/bench/blob/blobs/${digest}`;
  const direct = `${setting.registryUrl}${path}`;
  await setting.curl(direct); // the registry's page cache is warm for both sides
  const cold: CurlTiming[] = [];
  const coldDirect: CurlTiming[] = [];
  const warm: CurlTiming[] = [];
  const warmDirect: CurlTiming[] = [];
  for (let r = 0; r < rounds; r++) {
    const peer = await setting.startPeer(`peer-${r}`);
    try {
      // Prime the access decision so "cold" measures the blob path, not the first HEAD.
      await setting.curl(`${peer.url}${path}`, 'HEAD');
      coldDirect.push(await setting.curl(direct));
      cold.push(await setting.curl(`${peer.url}${path}`));
      warmDirect.push(await setting.curl(direct));
      warm.push(await setting.curl(`${peer.url}${path}`));
    } finally {
      await peer.stop();
    }
  }
  const mbps = (t: CurlTiming) => t.bytes / 1e6 / (t.totalMs / 1000);
  return {
    bench: 'mirror',
    setting: setting.name,
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
}

function printTable(results: Array<Awaited<ReturnType<typeof measure>>>): void {
  const f = (n: number) => n.toFixed(1);
  console.log(`\nMirror benchmark: ${results[0]!.sizeMiB} MiB blob, median of ${results[0]!.rounds} rounds, curl client\n`);
  console.log('| setting            | measure        | through peer | registry direct | ratio (aim)          |');
  console.log('| ------------------ | -------------- | ------------ | --------------- | -------------------- |');
  for (const r of results) {
    const s = r.setting.padEnd(18);
    console.log(`| ${s} | cold pull MB/s | ${f(r.coldPeerMBps).padStart(12)} | ${f(r.coldDirectMBps).padStart(15)} | ${r.coldRatio.toFixed(2).padStart(5)}x (>= 0.90x)    |`);
    console.log(`| ${s} | warm blob MB/s | ${f(r.warmPeerMBps).padStart(12)} | ${f(r.warmDirectMBps).padStart(15)} | ${r.warmRatio.toFixed(2).padStart(5)}x (>= 1.00x)    |`);
    console.log(`| ${s} | cold TTFB ms   | ${f(r.coldTtfbPeerMs).padStart(12)} | ${f(r.coldTtfbDirectMs).padStart(15)} | +${f(r.ttfbExtraMs).padStart(5)} ms (< +50 ms) |`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '256' }, rounds: { type: 'string', default: '3' }, 'link-mbit': { type: 'string' } } });
  const sizeMiB = Number(values['size-mib']);
  const rounds = Number(values.rounds);
  const dir = await mkdtemp(join(tmpdir(), 'pollen-bench-mirror-'));
  const results = [];
  try {
    const layer = await randomFileLayer('bench-mirror', sizeMiB * 1024 * 1024);
    const layout = new OciLayout(join(dir, 'img'));
    layout.tag(layout.addImage([layer]), 'v1');
    await layout.save();
    const settings: Array<() => Promise<Setting>> = [() => loopbackSetting(layout.dir, dir)];
    if (values['link-mbit']) settings.push(() => shapedSetting(layout.dir, Number(values['link-mbit'])));
    for (const make of settings) {
      const setting = await make();
      try {
        const r = await measure(setting, layer.descriptor.digest, rounds, sizeMiB);
        console.log(JSON.stringify(r));
        results.push(r);
      } finally {
        await setting.close();
      }
    }
    printTable(results);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
