// A daemon whose start fails half-way exits with the cause, instead of living on without its listener.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_SECRET, startSupernodeProcess } from '../helpers/p2p-cluster.ts';
import { POLLEN_BIN, type PollenProcess } from '../helpers/pollen.ts';
import { TestRegistry } from '../helpers/registry.ts';

describe('a failed daemon start', () => {
  let registry: TestRegistry;
  let supernode: PollenProcess;
  let busy: Server;
  let dir: string;

  beforeAll(async () => {
    registry = await TestRegistry.start();
    supernode = await startSupernodeProcess(registry);
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    dir = await mkdtemp(join(tmpdir(), 'pollen-start-'));
  });

  afterAll(async () => {
    busy?.close();
    await supernode?.stop();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a peer whose mirror port is taken exits non-zero with EADDRINUSE, after it had joined its supernode', async () => {
    const port = (busy.address() as { port: number }).port;
    const child = spawn(process.execPath, [POLLEN_BIN, 'peer', '--listen', `127.0.0.1:${port}`, '--metrics-listen', '127.0.0.1:0', '--data', dir, '--upstream', registry.url, '--supernode', supernode.url, '--secret', CLUSTER_SECRET, '--wire', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 15_000);
      child.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/pollen: listen EADDRINUSE/);
  });
});
