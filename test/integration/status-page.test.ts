// The supernode's status page in a real browser: a real registry, `pollen supernode` and two
// `pollen peer --supernode` processes, Debian's Chromium driven by playwright-core. Peer A pulls a
// 24 MiB layer first; peer B then pulls it from A, whose uploads are capped at 3 MiB/s so the
// transfer takes seconds: the page must list both peers and show B's row of the task's
// pieces-by-peers grid fill up over time, from the server-sent events alone (no reload).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushRandomImage, startP2pPeer, startSupernodeProcess, type ImageFixture } from '../helpers/p2p-cluster.ts';
import type { PollenProcess } from '../helpers/pollen.ts';
import { TestRegistry } from '../helpers/registry.ts';
import { waitFor } from '../helpers/tools.ts';

const MiB = 1 << 20;
const CHROMIUM = '/usr/bin/chromium';
// The screenshot of docs/ is refreshed only on request (POLLEN_UPDATE_SCREENSHOT=1); otherwise it
// goes to a temporary file, so a test run leaves the checkout as it was.
const SCREENSHOT = process.env.POLLEN_UPDATE_SCREENSHOT === '1' ? resolve(import.meta.dirname, '../../docs/status-page.png') : join(tmpdir(), `pollen-status-page-${process.pid}.png`);

let registry: TestRegistry;
let image: ImageFixture;
let supernode: PollenProcess;
let peerA: PollenProcess;
let peerB: PollenProcess;
let browser: BrowserContext;
let profile: string;
const procs: PollenProcess[] = [];

function peerIdOf(p: PollenProcess): string {
  const m = /"peerId":"([0-9a-f]{40})"[^\n]*"msg":"joined the P2P cluster"/.exec(p.output());
  if (!m) throw new Error('peer did not log its id');
  return m[1]!;
}

async function pullBlob(p: PollenProcess, digest: string): Promise<number> {
  const res = await fetch(`${p.url}/v2/status/app/blobs/${digest}`);
  if (res.status !== 200) throw new Error(`pull through ${p.url}: ${res.status} ${await res.text()}`);
  return (await res.arrayBuffer()).byteLength;
}

/** Pieces B's grid row shows for the task (undefined while it has no row). */
async function heldOnPage(page: Page, digest: string, peerId: string): Promise<number | undefined> {
  const v = await page.locator(`section.task[data-digest="${digest}"] tr.row[data-peer="${peerId}"]`).getAttribute('data-held', { timeout: 200 }).catch(() => null);
  return v === null ? undefined : Number(v);
}

beforeAll(async () => {
  expect(existsSync(CHROMIUM), 'Debian chromium (scripts/setup.sh installs it)').toBe(true);
  registry = await TestRegistry.start();
  image = await pushRandomImage(registry, 'status/app', [24 * MiB]);
  supernode = await startSupernodeProcess(registry);
  procs.push(supernode);
  peerA = await startP2pPeer(registry, supernode.url, ['--upload-rate', String(3 * MiB)]);
  procs.push(peerA);
  peerB = await startP2pPeer(registry, supernode.url);
  procs.push(peerB);
  await waitFor(async () => /registered with the supernode/.test(peerA.output()) && /registered with the supernode/.test(peerB.output()), 'peers registered', 60_000);
  profile = await mkdtemp(join(tmpdir(), 'pollen-chromium-'));
  // A fresh profile (playwright passes it as --user-data-dir), never a download: Debian's Chromium.
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 700 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all(procs.map((p) => p.stop()));
  await registry?.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
});

describe('the supernode status page', () => {
  it('lists the peers and shows a transfer progress live, piece by piece', async () => {
    const layer = image.layers[0]!;
    const digest = layer.descriptor.digest;
    expect(await pullBlob(peerA, digest)).toBe(layer.blob.length);

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    await page.goto(`${supernode.adminUrl}/`);
    await page.locator('#state', { hasText: 'live' }).waitFor({ timeout: 10_000 });
    const [a, b] = [peerIdOf(peerA), peerIdOf(peerB)];
    await page.locator(`#peers tr[data-peer="${a}"]`).waitFor({ timeout: 10_000 });
    await page.locator(`#peers tr[data-peer="${b}"]`).waitFor({ timeout: 10_000 });
    const pieceCount = Number((await page.locator(`section.task[data-digest="${digest}"] tr.row[data-peer="${a}"]`).getAttribute('data-held', { timeout: 10_000 })) ?? 0);
    expect(pieceCount).toBeGreaterThan(10);

    // B pulls from A at 3 MiB/s: several seconds, seen through the page only.
    const pulled = pullBlob(peerB, digest);
    const seen: number[] = [];
    const upRates: string[] = [];
    let shot = false;
    let pull = 'pending';
    pulled.then((n) => (pull = `done, ${n} bytes`), (e: unknown) => (pull = `failed: ${String(e)}`));
    await waitFor(async () => {
      const held = await heldOnPage(page, digest, b);
      upRates.push((await page.locator(`#peers tr[data-peer="${a}"] td`).nth(5).textContent()) ?? '');
      if (held !== undefined && held !== seen.at(-1)) seen.push(held);
      if (!shot && held !== undefined && held > pieceCount / 4 && held < pieceCount) {
        await page.screenshot({ path: SCREENSHOT, fullPage: true });
        shot = true;
      }
      return held === pieceCount;
    }, 'peer B complete on the page', 120_000).catch((err: unknown) => {
      // Seen once in a loaded CI run: say whether B's pull itself finished and how it got its bytes.
      const notable = peerB.output().split('\n').filter((l) => /"level":(40|50)|blob committed|fallback|stall/.test(l)).slice(-8).join('\n');
      throw new Error(`${(err as Error).message}; B's pull ${pull}; held pieces seen: ${seen.join(', ')}; B's log:\n${notable}`);
    });
    expect(await pulled).toBe(layer.blob.length);

    // Partial values between empty and complete: the page moved with the transfer, not only at its end.
    expect(seen.filter((n) => n > 0 && n < pieceCount).length, `held pieces seen: ${seen.join(', ')}`).toBeGreaterThanOrEqual(2);
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(shot).toBe(true);
    await expect(page.locator(`section.task[data-digest="${digest}"]`).getAttribute('data-complete')).resolves.toBe('2');
    // What A's heartbeats report: the package version, and uploads to B at a rate the page shows.
    const version = (JSON.parse(await readFile(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;
    expect(await page.locator(`#peers tr[data-peer="${a}"] td`).nth(2).textContent()).toBe(version);
    expect(upRates.some((r) => /[1-9].*B\/s/.test(r)), `A's up rates seen: ${upRates.join(', ')}`).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  }, 240_000);

  it('drops nothing into the page but ids, addresses, digests and counts', async () => {
    const res = await fetch(`${supernode.adminUrl}/api/v1/status`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).not.toMatch(/secret|token|authorization|password/i);
    const csp = (await fetch(`${supernode.adminUrl}/`)).headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'none'; script-src 'sha256-/);
  });
});
