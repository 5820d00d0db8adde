// `pollen bench sim` with the shared CPU of a bed (--cores and the term --against fits), through the real command.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = resolve(fileURLToPath(import.meta.url), '../../../../bin/pollen.js');
const dir = mkdtempSync(join(tmpdir(), 'pollen-sim-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sim(out: string, ...cpu: string[]) {
  return spawnSync(process.execPath, [BIN, 'bench', 'sim', '--peers', '4', '--size', '8', '--layers', 'bed', '--mbit', '100', '--out', join(dir, out), ...cpu], { encoding: 'utf8', timeout: 60_000 });
}

const allDoneS = (out: string): number => (JSON.parse(readFileSync(join(dir, out, 'results.json'), 'utf8')) as { rows: Array<{ allDoneS: number }> }).rows[0]!.allDoneS;

describe('pollen bench sim on shared cores', () => {
  it('runs each host\'s fixed CPU on the cores before its pull, and takes fractional costs per byte', () => {
    const free = sim('free', '--cores', '2', '--peer-ns-per-byte', '0,0');
    expect(free.status, free.stderr).toBe(0);
    // 4 hosts x 2 CPU s on 2 cores: the pulls start 4 s later.
    const fixed = sim('fixed', '--cores', '2', '--peer-ns-per-byte', '0.5,0.25', '--host-cpu-s', '2', '--contention', '0.37');
    expect(fixed.status, fixed.stderr).toBe(0);
    expect(allDoneS('fixed')).toBeGreaterThan(allDoneS('free') + 3.5);
  });

  it('refuses a CPU term it cannot use, saying which flag and why', () => {
    const bad = sim('bad', '--cores', '2', '--peer-ns-per-byte', '1,x');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--peer-ns-per-byte takes two numbers of 0 or more.*"1,x"/);
    expect(sim('bad', '--cores', '2', '--contention', '1').stderr).toMatch(/--contention takes a number of 0 or more and below 1/);
    expect(sim('bad', '--cores', '2', '--host-cpu-s', '-1').stderr).toMatch(/--host-cpu-s takes a number of 0 or more/);
    expect(sim('bad', '--host-cpu-s', '0.5').stderr).toMatch(/--host-cpu-s and --contention share the cores of --cores .*give --cores too/);
  });
});
