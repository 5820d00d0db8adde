// A member cannot keep another peer out of the cluster by registering that peer's id first. The
// moment it can try is a supernode restart: every peer registers again, and a member that knows a
// victim's id (parents lists name them) races it. Real supernode (restarted on the same address),
// real agent, the squatter a supernode client with the cluster secret.
import { afterAll, describe, expect, it } from 'vitest';
import { generateSecret } from '../../src/cluster-tls.ts';
import { SupernodeClient } from '../../peer/p2p/supernode-client.ts';
import { startPeer, startSupernode, type TestPeer } from '../helpers/p2p-swarm.ts';
import { freePort, waitFor } from '../helpers/tools.ts';

const SECRET = generateSecret();

describe('peer ids cannot be squatted', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  it('a member that registers a peer id first after a supernode restart does not keep that peer out: it registers with a new id', async () => {
    const listen = `127.0.0.1:${await freePort()}`;
    const upstream = 'http://127.0.0.1:9'; // nothing is pulled here
    const first = await startSupernode({ upstream, secret: SECRET, listen });
    let node = first.node;
    cleanups.push(() => node.close());
    const url = `http://${listen}`;
    const victim: TestPeer = await startPeer([url], { secret: SECRET });
    cleanups.push(() => victim.close());
    await waitFor(async () => victim.agent.isRegistered(url), 'the victim to register', 10_000);
    const id = victim.agent.peerId;

    const squatter = new SupernodeClient({}, { urls: [url], secret: SECRET, timeoutMs: 2_000 });
    cleanups.push(() => squatter.close());
    // The squatter registers the victim's id right after the restart; should the victim's own
    // registration land first (a heartbeat in those few milliseconds), restart and race again.
    let squatted = false;
    for (let attempt = 0; attempt < 3 && !squatted; attempt++) {
      await node.close();
      node = (await startSupernode({ upstream, secret: SECRET, listen })).node;
      const taken = await squatter.register(url, { peerId: id, wireAddr: '127.0.0.1:40999', uploadSlots: 1, holdings: [] }).catch((err: Error) => err);
      squatted = !(taken instanceof Error) && taken.peerId === id;
    }
    expect(squatted).toBe(true);

    // The victim finds its session gone at its next heartbeat (idle: every 5 s) and registers again.
    await waitFor(async () => victim.agent.isRegistered(url) && victim.agent.peerId !== id, 'the victim to register again under a new id', 15_000);
    // The new registration is the victim's own: its heartbeats are accepted.
    expect(await victim.agent.client.heartbeat(url, victim.agent.peerId)).toMatchObject({ ok: true });
  }, 40_000);
});
