// `pollen gc`: runs a garbage collection of the peer's content store now and prints what it removed.
// With a peer running it asks the peer (POST /api/v1/gc on its admin listener), which knows what is
// in use; with none, it collects directly on the data directory. A peer that runs but does not
// answer is detected by its database lock: the command then refuses rather than race the daemon.
import type { Command } from 'commander';
import { systemClock } from '../../src/clock.ts';
import { PollenError } from '../../src/errors.ts';
import type { CollectReport } from '../../src/store/collector.ts';
import { GC_ROUTE } from '../../src/store/gc-routes.ts';
import { formatBytes, parseDuration } from '../../src/units.ts';
import { expandHome, PEER_SETTINGS } from '../../peer/config.ts';
import { addConfigOptions, configFromCommand } from '../options.ts';
import { join } from 'node:path';
import { stat } from 'node:fs/promises';

/** The peer's admin listener (`--metrics-listen`), where POST /api/v1/gc lives. */
export const DEFAULT_PEER_ADMIN_URL = 'http://127.0.0.1:65003';
const REQUEST_TIMEOUT_MS = 120_000;
const GC_SETTINGS = PEER_SETTINGS.filter((s) => s.key === 'data' || s.key === 'diskQuota' || s.key === 'blobTtl');

export function registerGc(program: Command): void {
  const cmd = program
    .command('gc')
    .description('garbage-collect the peer\'s content store now: abandoned downloads, blobs past --blob-ttl, least recently used blobs above --disk-quota')
    .option('--peer <url>', `the running peer's admin URL (default ${DEFAULT_PEER_ADMIN_URL}; without a peer there, collect directly on --data)`)
    .option('--direct', 'collect on --data without asking a peer (refused while a peer runs on it)')
    .option('--json', 'print the report as JSON');
  addConfigOptions(cmd, GC_SETTINGS).action(async () => {
    const opts = cmd.opts<{ peer?: string; direct?: boolean; json?: boolean }>();
    const url = opts.peer ?? DEFAULT_PEER_ADMIN_URL;
    const report = (opts.direct ? undefined : await askPeer(url, opts.peer !== undefined)) ?? (await collectDirectly(cmd, url));
    process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : describe(report));
  });
}

/** The peer's report; undefined when nothing listens there and the URL was only the default. */
async function askPeer(url: string, explicit: boolean): Promise<CollectReport | undefined> {
  let res: Response;
  try {
    res = await fetch(new URL(GC_ROUTE, url), { method: 'POST', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (!explicit && cause?.code === 'ECONNREFUSED') return undefined;
    throw new PollenError('ERR_UPSTREAM_UNAVAILABLE', `no peer answered at ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { url });
  }
  if (!res.ok) throw new PollenError('ERR_UPSTREAM_PROTOCOL', `the peer at ${url} answered ${res.status} to ${GC_ROUTE}: ${(await res.text()).slice(0, 300)}`, { url });
  return (await res.json()) as CollectReport;
}

async function collectDirectly(cmd: Command, url: string): Promise<CollectReport> {
  const values = configFromCommand(cmd, GC_SETTINGS);
  const data = expandHome(values.data as string);
  const content = join(data, 'content');
  if (!(await stat(content).catch(() => undefined))?.isDirectory()) {
    throw new PollenError('ERR_NOT_FOUND', `no content store at ${content} (and no peer at ${url}): pass --data or --peer`, { data });
  }
  // The peer holds its database open: failing to open it means a peer runs on this directory.
  // The store and its database are loaded by the command that opens them (start-up of every other command).
  const [{ openLevelKv }, { openGcStore }] = await Promise.all([import('../../src/db.ts'), import('../../src/store/gc-store.ts')]);
  const db = await openLevelKv(join(data, 'meta')).catch((err: unknown) => {
    throw new PollenError('ERR_INVALID_REQUEST', `a peer seems to run on ${data} (its database is locked) but does not answer at ${url}: pass --peer with its admin URL`, { data }, { cause: err });
  });
  try {
    const gc = await openGcStore({ clock: systemClock }, content, {
      collect: false,
      diskQuota: values.diskQuota as string | undefined,
      blobTtlMs: values.blobTtl === undefined ? 0 : parseDuration(values.blobTtl as string),
    });
    try {
      return await gc.collector.collect();
    } finally {
      await gc.close();
    }
  } finally {
    await db.close();
  }
}

function describe(r: CollectReport): string {
  const lines = r.removed.map((b) => `removed ${b.digest} ${formatBytes(b.size)} (${b.reason})`);
  lines.push(...r.ingests.map((i) => `removed abandoned download ${i.digest} ${formatBytes(i.size)}`));
  const quota = r.quotaBytes === null ? 'no quota' : `quota ${formatBytes(r.quotaBytes)}`;
  lines.push(`${r.removed.length} blobs and ${r.ingests.length} abandoned downloads removed, ${formatBytes(r.freedBytes)} freed; ${r.blobs} blobs hold ${formatBytes(r.usedBytes)} (${quota})`);
  return `${lines.join('\n')}\n`;
}
