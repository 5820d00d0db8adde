// The multi-host test bed checks itself: the bytes it counts are the bytes sent, a tbf cap holds
// within 10 % and passes a TSO packet whole, and nothing (namespace, ifb, process) is left behind,
// even on SIGINT. Needs root: without it Testbed.create throws a clear error and these tests fail
// (they never skip).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../bench/testbed/exec.ts';
import type { NsProcess } from '../../bench/testbed/ns-process.ts';
import { counterDelta } from '../../bench/testbed/shaping.ts';
import { namespacesWithPrefix, Testbed, type Host } from '../../bench/testbed/testbed.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PROBE = join(ROOT, 'bench', 'testbed', 'tcp-probe.ts');
const PROBE_PORT = 7100;
const UP_CAP_MBIT = 80;
const DOWN_CAP_MBIT = 40;

interface ProbeReport {
  role: string;
  bytes: number;
  ms: number;
}

async function firstLine(proc: NsProcess, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = pattern.exec(proc.output());
    if (m) return m[0];
    if (!proc.running) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${proc.label}: no line matching ${pattern} (output: ${proc.output()})`);
}

/** Sends `bytes` over TCP from one host to another with the probe; returns the receiver's report. */
async function transfer(bed: Testbed, from: Host, to: Host, bytes: number): Promise<ProbeReport> {
  const node = process.execPath;
  const receiver = bed.spawn(to, node, ['--import', 'tsx', PROBE, 'recv', to.ip, String(PROBE_PORT)], { cwd: ROOT });
  await firstLine(receiver, /listening/);
  const sender = bed.spawn(from, node, ['--import', 'tsx', PROBE, 'send', to.ip, String(PROBE_PORT), String(bytes)], { cwd: ROOT });
  const [rc, sc] = await Promise.all([receiver.exited, sender.exited]);
  expect(sc, sender.output()).toBe(0);
  expect(rc, receiver.output()).toBe(0);
  return JSON.parse(await firstLine(receiver, /\{"role":"recv".*\}/)) as ProbeReport;
}

async function rootIfbs(): Promise<string> {
  return run('ip', ['-o', 'link', 'show', 'type', 'ifb']);
}

describe('multi-host test bed (needs root)', () => {
  let bed: Testbed;
  let ifbsBefore: string;

  beforeAll(async () => {
    ifbsBefore = await rootIfbs().catch(() => '');
    bed = await Testbed.create(
      [
        { name: 'src', upMbit: UP_CAP_MBIT },
        { name: 'sink', upMbit: 1000, downMbit: 1000 },
        { name: 'slow', downMbit: DOWN_CAP_MBIT },
      ],
      { countedSources: ['src'] },
    );
  });

  afterAll(async () => {
    await bed?.close();
  });

  it('counts the bytes sent between two hosts on both links and per source, to within header overhead', async () => {
    const bytes = 12 * 1024 * 1024;
    const before = await bed.counters();
    const report = await transfer(bed, bed.host('src'), bed.host('sink'), bytes);
    const after = await bed.counters();
    expect(report.bytes).toBe(bytes);
    const src = counterDelta(after.get('src')!, before.get('src')!);
    const sink = counterDelta(after.get('sink')!, before.get('sink')!);
    // Interface counters see IP packets: the payload plus TCP/IP headers (well under 5 % with GRO/GSO).
    for (const counted of [src.txBytes, sink.rxBytes, sink.rxFrom.src!]) {
      expect(counted).toBeGreaterThanOrEqual(bytes);
      expect(counted).toBeLessThanOrEqual(bytes * 1.05);
    }
    // The ACKs going back are counted on the other direction, and not as traffic from `src`.
    expect(sink.rxFrom.other!).toBeLessThan(bytes * 0.01);
    expect(src.rxBytes).toBeLessThan(bytes * 0.05);
  });

  /**
   * The rate through a capped link, best of up to three transfers: a busy machine can starve the
   * sender or receiver of CPU and make one transfer slower than the cap, but no transfer may ever
   * go faster than the cap allows.
   */
  async function cappedRate(from: Host, to: Host, bytes: number, capMbit: number): Promise<number> {
    let best = 0;
    for (let attempt = 0; attempt < 3; attempt++) {
      const report = await transfer(bed, from, to, bytes);
      const mbit = (report.bytes * 8) / (report.ms * 1000);
      expect(mbit).toBeLessThan(capMbit * 1.1);
      best = Math.max(best, mbit);
      if (best > capMbit * 0.9) break;
    }
    return best;
  }

  it('holds an upload cap (tbf on eth0) within 10 %', async () => {
    const mbit = await cappedRate(bed.host('src'), bed.host('sink'), 10 * 1024 * 1024, UP_CAP_MBIT);
    expect(mbit).toBeGreaterThan(UP_CAP_MBIT * 0.9);
  });

  it('holds a download cap (ifb + tbf) within 10 %', async () => {
    const mbit = await cappedRate(bed.host('sink'), bed.host('slow'), 5 * 1024 * 1024, DOWN_CAP_MBIT);
    expect(mbit).toBeGreaterThan(DOWN_CAP_MBIT * 0.9);
  });

  it('carries a TSO packet across a capped link whole, as a NIC would (tbf does not cut it into frames)', async () => {
    // A loss-based congestion control in the sender's namespace: its TSO packets are then as large
    // as the kernel makes them (64 KiB; BBR at a sane rate estimate sends smaller ones, which crossed
    // the old bucket whole). Reno, not cubic: a namespace may only choose what the host's
    // net.ipv4.tcp_allowed_congestion_control lists, and reno is always allowed (a host running BBR
    // lists "reno bbr"). Both size TSO packets from cwnd and RTT alike.
    const src = bed.host('src');
    await run('ip', ['netns', 'exec', src.ns, 'sysctl', '-qw', 'net.ipv4.tcp_congestion_control=reno']);
    const bytes = 8 * 1024 * 1024;
    const before = await bed.counters();
    await transfer(bed, src, bed.host('sink'), bytes);
    const after = await bed.counters();
    const sink = counterDelta(after.get('sink')!, before.get('sink')!);
    // Cut into MSS-sized frames it would be ~725 packets per MiB.
    const perMiB = sink.rxPackets / (sink.rxBytes / 2 ** 20);
    expect(perMiB).toBeLessThan(300);
  });

  it('measures CPU seconds and peak RSS of a process run under GNU time', async () => {
    const r = await bed.runTimed(bed.host('sink'), process.execPath, ['-e', 'const b = Buffer.alloc(64 << 20, 1); let x = 0; for (let i = 0; i < 3e8; i++) x += i; console.log(b[5] + x)']);
    expect(r.exitCode).toBe(0);
    expect(r.usage.cpuSeconds).toBeGreaterThan(0.1);
    expect(r.usage.maxRssKiB).toBeGreaterThan(64 * 1024);
  });

  it('close() removes every namespace, ifb device and process it created', async () => {
    const daemon = bed.spawn(bed.host('slow'), 'sleep', ['600']);
    await new Promise((r) => setTimeout(r, 100));
    expect(daemon.running).toBe(true);
    expect(await namespacesWithPrefix(bed.prefix)).toHaveLength(4);
    await bed.close();
    expect(daemon.running).toBe(false);
    expect(await namespacesWithPrefix(bed.prefix)).toEqual([]);
    expect(await rootIfbs().catch(() => '')).toBe(ifbsBefore);
    await bed.close(); // idempotent
  });

  it('removes everything when the process running it gets SIGINT', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'integration', 'fixtures', 'testbed-until-signal.ts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    while (!/ready (\w+)/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    const prefix = /ready (\w+)/.exec(out)?.[1];
    expect(prefix, out).toBeDefined();
    expect(await namespacesWithPrefix(prefix!)).toHaveLength(3);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(await namespacesWithPrefix(prefix!)).toEqual([]);
  });
});
