import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../../src/clock.ts';
import { MemoryContentStore } from '../../../../src/memory-content-store.ts';
import { API } from '../../../../src/p2p/supernode-api.ts';
import { busyHeartbeatMs, P2pAgent, reportEveryMs, sparedHeartbeatMs } from '../../../../peer/p2p/p2p-agent.ts';

/**
 * A stand-in supernode on loopback: registers anyone with `heartbeatMs`, counts heartbeats, and
 * answers batches of syncs (keeping their bodies), saying it took their report when `takesReports`.
 */
async function fakeSupernode(heartbeatMs: number, takesReports = false, refuseBeats = 0): Promise<{ url: string; beats: number[]; registrations: number[]; batches: Array<Record<string, unknown>>; server: Server }> {
  const beats: number[] = [];
  const registrations: number[] = [];
  const batches: Array<Record<string, unknown>> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url === API.register) {
        registrations.push(Date.now());
        return res.end(JSON.stringify({ peerId: (JSON.parse(body) as { peerId: string }).peerId, token: 'a-token', heartbeatMs }));
      }
      if (req.url === API.heartbeat) {
        beats.push(Date.now());
        // The first `refuseBeats` refused as the supernode refuses a peer over its allowance.
        if (beats.length <= refuseBeats) {
          res.statusCode = 429;
          res.setHeader('retry-after', '2');
          return res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'peer called faster than its allowance; try again in 2 s', detail: { pollenCode: 'ERR_TOO_MANY_REQUESTS', retryAfter: 2 } }] }));
        }
        return res.end('{}');
      }
      if (req.url === API.syncs) {
        const batch = JSON.parse(body) as { syncs: Array<{ digest: string }> };
        batches.push(batch);
        const syncs = batch.syncs.map((s) => ({ digest: s.digest, answer: { hashes: [], parents: [], seedGrants: [], availability: [] } }));
        return res.end(JSON.stringify(takesReports ? { syncs, reported: true } : { syncs }));
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'no route' }] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, beats, registrations, batches, server };
}

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

async function startAgent(url: string): Promise<P2pAgent> {
  const agent = new P2pAgent(
    { store: new MemoryContentStore(), logger: pino({ level: 'silent' }), clock: systemClock },
    { supernodes: [url], secret: '', wireListen: '127.0.0.1:0', wireAdvertise: undefined, uploadSlots: 4, uploadBytesPerSecond: 0, maxConnections: 8, supernodeTimeoutMs: 2_000 },
  );
  open.unshift(() => agent.close());
  await agent.start();
  return agent;
}

/**
 * Heartbeats an idle agent sends in `ms` from its first one (registering comes first, and takes
 * what it takes on a loaded machine: counting from the agent's start failed CI once).
 */
async function idleAgentFor(heartbeatMs: number, ms: number): Promise<number> {
  const sn = await fakeSupernode(heartbeatMs);
  open.push(() => new Promise<void>((r) => sn.server.close(() => r())));
  await startAgent(sn.url);
  const deadline = Date.now() + 15_000;
  while (sn.beats.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const first = sn.beats[0];
  if (first === undefined) throw new Error('no heartbeat within 15 s');
  await new Promise((r) => setTimeout(r, Math.max(0, first + ms - Date.now())));
  return sn.beats.filter((t) => t - first < ms).length;
}

describe('an idle peer heart-beats at the period its supernode names', () => {
  it('every heartbeatMs the registration answered (700 ms: four in 2.2 s from the first, where the default period would give one)', async () => {
    const beats = await idleAgentFor(700, 2_200);
    expect(beats).toBeGreaterThanOrEqual(3);
    expect(beats).toBeLessThanOrEqual(4);
  });

  it('no faster than every 500 ms whatever the supernode says', async () => {
    expect(await idleAgentFor(20, 1_600)).toBeLessThanOrEqual(4);
  });
});

describe('a heartbeat refused for the peer\'s allowance (429)', () => {
  it('is tried again after the wait the refusal asks, without registering again', async () => {
    const sn = await fakeSupernode(500, false, 2);
    open.push(() => new Promise<void>((r) => sn.server.close(() => r())));
    await startAgent(sn.url);
    const deadline = Date.now() + 20_000;
    while (sn.beats.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(sn.beats.length, 'three heartbeats within 20 s').toBeGreaterThanOrEqual(3);
    // 2 s after each refusal (not the 1 s retry of an unreachable supernode), and one registration only.
    expect(sn.beats[1]! - sn.beats[0]!).toBeGreaterThanOrEqual(1_900);
    expect(sn.beats[2]! - sn.beats[1]!).toBeGreaterThanOrEqual(1_900);
    expect(sn.registrations).toHaveLength(1);
  }, 30_000);
});

describe('a busy peer heart-beats every second, or as seldom as a pacing supernode asks', () => {
  it('takes the period the last answer asked, between a second and the idle period; anything else is a second', () => {
    expect(busyHeartbeatMs(5_000, undefined)).toBe(1_000);
    expect(busyHeartbeatMs(5_000, 3_000)).toBe(3_000);
    expect(busyHeartbeatMs(5_000, 60_000)).toBe(5_000);
    expect(busyHeartbeatMs(5_000, 10)).toBe(1_000);
    for (const odd of ['3000', Number.NaN, Number.POSITIVE_INFINITY, -5, null]) expect(busyHeartbeatMs(5_000, odd)).toBe(1_000);
  });
});

describe("a batch of syncs carries the report as a busy heartbeat would go, or every 4 of the waits its answers asked", () => {
  it('within half the idle period, which a report spares the heartbeat for', () => {
    expect(reportEveryMs(5_000, undefined, 0)).toBe(1_000);
    expect(reportEveryMs(5_000, undefined, 400)).toBe(1_600);
    // Paced to 1.25 s (10,000 simulated peers): every 2.5 s, not every second.
    expect(reportEveryMs(5_000, undefined, 1_250)).toBe(2_500);
    expect(reportEveryMs(5_000, 2_000, 100)).toBe(2_000);
    expect(reportEveryMs(60_000, undefined, 4_000)).toBe(16_000);
  });
});

describe('a batch of syncs carries the heartbeat report and stands for the heartbeat', () => {
  const DIGEST = `sha256:${'ab'.repeat(32)}` as const;

  /** Beats an agent sends in `ms` while it syncs every 100 ms (heartbeat period 300 ms); it stops early once `enough` came. */
  async function beatsWhileSyncing(takesReports: boolean, ms: number, enough = Infinity): Promise<{ beats: number; batches: Array<Record<string, unknown>> }> {
    const sn = await fakeSupernode(300, takesReports);
    open.push(() => new Promise<void>((r) => sn.server.close(() => r())));
    const agent = await startAgent(sn.url);
    agent.report = () => ({ version: '9.9.9', uploadedBytes: 42 });
    while (sn.beats.length === 0) await new Promise((r) => setTimeout(r, 20));
    const before = sn.beats.length;
    const until = Date.now() + ms;
    while (Date.now() < until && sn.beats.length - before < enough) {
      await agent.client.sync(sn.url, DIGEST, { have: [], wantSeed: 0, badParents: [] });
      await new Promise((r) => setTimeout(r, 100));
    }
    return { beats: sn.beats.length - before, batches: sn.batches };
  }

  it('sends no heartbeat while its syncs reach a supernode that took their report', async () => {
    const { beats, batches } = await beatsWhileSyncing(true, 1_500);
    expect(batches.length).toBeGreaterThanOrEqual(8);
    // The report rides on a batch when due (every 150 ms here, half the idle period), not on each.
    const reports = batches.filter((b) => b.report !== undefined);
    for (const b of reports) expect(b.report).toEqual({ version: '9.9.9', uploadedBytes: 42 });
    expect(reports.length).toBeGreaterThanOrEqual(4);
    expect(reports.length).toBeLessThan(batches.length);
    // Without the syncs' reports: one heartbeat every 300 ms, ~5 in 1.5 s.
    expect(beats).toBeLessThanOrEqual(1);
  });

  it('keeps heart-beating when the supernode does not say it took the report (one that predates it)', async () => {
    // ~5 in 1.5 s; up to 10 s for 3 on a loaded machine (its timers run late; the other test's 1.5 s bounds what is sent).
    const { beats } = await beatsWhileSyncing(false, 10_000, 3);
    expect(beats).toBeGreaterThanOrEqual(3);
  });

  it('a report spares the heartbeats of one idle period after it, no longer', () => {
    expect(sparedHeartbeatMs(10_000, 0, 1_000)).toBe(0);
    expect(sparedHeartbeatMs(10_000, 9_800, 1_000)).toBe(800);
    expect(sparedHeartbeatMs(10_000, 9_000, 1_000)).toBe(0);
    expect(sparedHeartbeatMs(10_000, 8_000, 1_000)).toBe(0);
  });
});
