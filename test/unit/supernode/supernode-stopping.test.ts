import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Supernode } from '../../../supernode/supernode.ts';

describe('a supernode stopping', () => {
  it("logs what its seed did over its life: bytes and pieces granted by kind (the fan-out bed's seed grants column)", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const dir = await mkdtemp(join(tmpdir(), 'pollen-sn-stop-'));
    try {
      const supernode = new Supernode({ logger: pino({ level: 'info' }, sink) }, { listen: '127.0.0.1:0', adminListen: '127.0.0.1:0', data: join(dir, 'sn'), secret: undefined, maxParents: 1, logLevel: 'info' });
      await supernode.start();
      await supernode.close();
      // A second close (a signal during shutdown) logs nothing more.
      await supernode.close();
      const stopping = lines.filter((l) => l.msg === 'supernode stopping');
      expect(stopping).toHaveLength(1);
      expect(stopping[0]).toMatchObject({ seed: { servedBytes: 0, registryBytes: 0 }, seedGrants: { unheld: 0, starved: 0 } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
