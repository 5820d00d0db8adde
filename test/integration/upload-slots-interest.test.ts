// A peer's upload slots on real sockets (peer/p2p/uploader.ts, BEP 3 interest): a child is unchoked
// only once it says it is interested, a child that says it no longer is gives its slot to one that
// waits, and it waits its turn when it wants pieces again.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import type { Digest } from '../../src/digest.ts';
import { AddressBans } from '../../src/p2p/wire-bans.ts';
import type { WireConnection } from '../../src/p2p/wire-connection.ts';
import { WireDialer } from '../../src/p2p/wire-dialer.ts';
import type { BuiltLayer } from '../helpers/images.ts';
import { startPeer, startSupernode, type TestPeer } from '../helpers/p2p-swarm.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { waitFor } from '../helpers/tools.ts';

/** Resolves true once `conn` is unchoked, false if it is still choked after `ms`. */
function unchokedWithin(conn: WireConnection, ms: number): Promise<boolean> {
  if (!conn.peerChoking) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    conn.once('unchoke', () => (clearTimeout(t), resolve(true)));
  });
}

function chokedWithin(conn: WireConnection, ms: number): Promise<boolean> {
  if (conn.peerChoking) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    conn.once('choke', () => (clearTimeout(t), resolve(true)));
  });
}

describe("a peer's upload slots go to children that want pieces", () => {
  let registry: TestRegistry;
  let layer: BuiltLayer;
  let layoutDir: string;
  let holder: TestPeer;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    registry = await TestRegistry.start();
    ({ layers: [layer], layoutDir } = await registry.pushRandomImage('test/slots:v1', [{ seed: 'slots', bytes: 2 << 20 }]));
    const { node } = await startSupernode({ upstream: registry.url });
    cleanups.push(() => node.close());
    holder = await startPeer([node.url], { uploadSlots: 1 });
    cleanups.push(() => holder.close());
    const digest = layer.descriptor.digest as Digest;
    expect(await holder.pull(registry.url, 'test/slots', digest)).toBe(digest);
  }, 120_000);

  /** Two children of the holder for the layer, dialled as a raw wire client does, ready. */
  async function twoChildren(): Promise<[WireConnection, WireConnection]> {
    const dialer = new WireDialer({ bans: new AddressBans({ clock: systemClock }) }, { peerId: randomBytes(20), secret: '' });
    const digest = layer.descriptor.digest as Digest;
    const pair: [WireConnection, WireConnection] = [dialer.dial(holder.agent.wireAddr, digest)!, dialer.dial(holder.agent.wireAddr, digest)!];
    cleanups.push(async () => pair.forEach((c) => c.destroy()));
    await Promise.all(pair.map((c) => c.ready));
    return pair;
  }

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await registry?.stop();
    await rm(layoutDir, { recursive: true, force: true });
  });

  it('unchokes an interested child only, gives the slot of a child no longer interested to the one waiting, and queues it when it asks again', async () => {
    const [a, b] = await twoChildren();
    // The holder counts them as children of this blob (what its own transfer reads: p2p-downloader.ts).
    const digest = layer.descriptor.digest as Digest;
    await waitFor(async () => holder.agent.childrenOf(digest) === 2, 'two children of the blob');
    expect(holder.agent.childrenOf('sha256:0000000000000000000000000000000000000000000000000000000000000000' as Digest)).toBe(0);
    // Neither said it wants anything: the one slot stays free.
    expect(await unchokedWithin(a, 500)).toBe(false);
    a.interested();
    expect(await unchokedWithin(a, 5_000)).toBe(true);
    b.interested();
    expect(await unchokedWithin(b, 500)).toBe(false);
    // a has what it wanted: its slot goes to b, and a is choked.
    a.interested(false);
    const [aChoked, bUnchoked] = await Promise.all([chokedWithin(a, 5_000), unchokedWithin(b, 5_000)]);
    expect([aChoked, bUnchoked]).toEqual([true, true]);
    const block = await b.request(0, 0, 16 * 1024);
    expect(block.equals(layer.blob.subarray(0, 16 * 1024))).toBe(true);
    // a wants pieces again: it waits behind b until b no longer does.
    a.interested();
    expect(await unchokedWithin(a, 500)).toBe(false);
    b.interested(false);
    expect(await unchokedWithin(a, 5_000)).toBe(true);
    a.destroy();
    await waitFor(async () => holder.agent.childrenOf(digest) === 1, 'one child left once the other closed');
    b.destroy();
  });

  it('a child that toggles its interest in a flood cannot take the slot of one that is served, and the peer keeps serving', async () => {
    const [served, flooder] = await twoChildren();
    served.interested();
    expect(await unchokedWithin(served, 5_000)).toBe(true);
    let servedChoked = false;
    served.on('choke', () => (servedChoked = true));
    for (let i = 0; i < 500; i++) flooder.interested(i % 2 === 0);
    flooder.interested();
    expect(await unchokedWithin(flooder, 1_000)).toBe(false);
    expect(servedChoked).toBe(false);
    const block = await served.request(0, 16 * 1024, 16 * 1024);
    expect(block.equals(layer.blob.subarray(16 * 1024, 32 * 1024))).toBe(true);
    expect(flooder.isClosed).toBe(false);
  });
});
