// `pollen secret` and the refusal of a P2P wire off loopback without a strong secret, through the real command.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { secretWeakness } from '../../../src/cluster-tls.ts';
import { PEER_SETTINGS } from '../../../peer/config.ts';

const BIN = resolve(fileURLToPath(import.meta.url), '../../../../bin/pollen.js');
const data = mkdtempSync(join(tmpdir(), 'pollen-secret-cli-'));
afterAll(() => rmSync(data, { recursive: true, force: true }));

function pollen(...args: string[]) {
  const env = { ...process.env };
  delete env.POLLEN_SECRET;
  delete env.POLLEN_WIRE;
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000, env });
}

describe('pollen secret', () => {
  it('prints a fresh strong secret each time', () => {
    const a = pollen('secret');
    const b = pollen('secret');
    expect(a.status).toBe(0);
    const s = a.stdout.trim();
    expect(s).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(secretWeakness(s)).toBeUndefined();
    expect(b.stdout.trim()).not.toBe(s);
  });

  it('the wire listens on loopback by default', () => {
    expect(PEER_SETTINGS.find((s) => s.key === 'wire')?.default).toBe('127.0.0.1:65002');
  });

  it('pollen start refuses a wire on 0.0.0.0 without a secret, naming the settings and pollen secret', () => {
    const r = pollen('start', '--data', data, '--wire', '0.0.0.0:0', '--supernode-listen', '127.0.0.1:0', '--listen', '127.0.0.1:0');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/refusing to run the peer wire on 0\.0\.0\.0:0 \(--wire \/ POLLEN_WIRE\): no cluster secret is set/);
    expect(r.stderr).toMatch(/--secret \/ POLLEN_SECRET/);
    expect(r.stderr).toMatch(/pollen secret/);
  });

  it('pollen peer with a supernode refuses a weak secret on a network address', () => {
    const r = pollen('peer', '--data', data, '--supernode', 'http://127.0.0.1:9', '--wire', '192.0.2.1:65002', '--secret', 'pollen-test-secret', '--listen', '127.0.0.1:0');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/the cluster secret has 18 characters; at least 32 are needed/);
  });
});
