// The npm package a host installs: `npm pack` of this checkout (the compiled dist/ that vitest's
// set-up built; --ignore-scripts so the clean build of `prepack` cannot pull dist/ from under the
// tests running beside this one), installed with `npm install -g` into an empty prefix with only
// its runtime dependencies, runs `pollen` without the repository: --help, docs, and a peer that
// answers /healthz. No TypeScript tooling and no test helper may be in what it installed.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileP, freePort, waitFor } from '../helpers/tools.ts';

const ROOT = resolve(import.meta.dirname, '../..');
let dir: string;
let pollen: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pollen-package-'));
  const { stdout } = await execFileP('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, maxBuffer: 16 << 20 });
  const [packed] = JSON.parse(stdout) as Array<{ filename: string }>;
  const tarball = join(dir, packed!.filename);
  // Another working directory than the checkout, so nothing of it can be picked up.
  await execFileP('npm', ['install', '-g', '--prefix', join(dir, 'prefix'), '--no-audit', '--no-fund', tarball], { cwd: dir, maxBuffer: 16 << 20 });
  pollen = join(dir, 'prefix', 'bin', 'pollen');
}, 300_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('installs the compiled command with its runtime dependencies only: no TypeScript, tsx, vitest or test helpers', () => {
    const installed = join(dir, 'prefix', 'lib', 'node_modules', 'pollen');
    expect(existsSync(join(installed, 'dist', 'cli', 'main.js'))).toBe(true);
    expect(existsSync(join(installed, 'tsconfig.build.json'))).toBe(false);
    expect(existsSync(join(installed, 'dist', 'test'))).toBe(false);
    expect(existsSync(join(installed, 'dist', 'bench', 'fanout', 'scenario.js'))).toBe(false);
    const deps = readdirSync(join(installed, 'node_modules'));
    for (const dev of ['typescript', 'tsx', 'vitest', 'esbuild', 'fast-check', 'playwright-core']) expect(deps, dev).not.toContain(dev);
    expect(deps).toContain('fastify');
  });

  it('runs `pollen --help` and `pollen docs` outside the checkout', async () => {
    const help = await execFileP(pollen, ['--help'], { cwd: dir });
    expect(help.stdout).toMatch(/peer/);
    expect(help.stdout).toMatch(/supernode/);
    const docs = await execFileP(pollen, ['docs'], { cwd: dir, maxBuffer: 16 << 20 });
    expect(docs.stdout).toContain('#### pollen peer');
  });

  it('starts a peer from the installed package that answers /healthz', async () => {
    const [mirror, metrics] = [await freePort(), await freePort()];
    const child = spawn(pollen, ['peer', '--listen', `127.0.0.1:${mirror}`, '--metrics-listen', `127.0.0.1:${metrics}`, '--data', join(dir, 'data'), '--upstream', 'http://127.0.0.1:9', '--log-level', 'warn'], { cwd: dir, stdio: 'ignore' });
    try {
      await waitFor(async () => {
        try {
          const res = await fetch(`http://127.0.0.1:${metrics}/healthz`);
          return res.status === 200;
        } catch {
          return false;
        }
      }, 'the installed peer to answer /healthz', 30_000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    }
  });
});
