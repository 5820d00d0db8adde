// `pollen preheat REF`: creates a preheat job on the supernode (jobs API on its admin listener,
// admin token) and, with --wait, follows it to the end: a live status line on a terminal, one line
// per change otherwise.
// Exit status: 0 when the job succeeded (or was created, without --wait), 1 when it failed.
import type { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { PollenError } from '../../src/errors.ts';
import type { JobBody, PreheatArgsBody, PreheatScope } from '../../src/preheat/jobs-api.ts';

const POLL_MS = 500;

interface PreheatOptions {
  scope: string;
  platform?: string;
  peers?: string[];
  count?: string;
  percentage?: string;
  wait?: boolean;
  supernode?: string;
  token?: string;
  username?: string;
  password?: string;
  timeoutMs?: string;
  json?: boolean;
}

function scopeOf(s: string): PreheatScope {
  const v = s.replace(/-/g, '_');
  if (v === 'all_peers' || v === 'single_seed_peer') return v;
  throw new PollenError('ERR_INVALID_REQUEST', `--scope must be all-peers or single-seed-peer, got ${JSON.stringify(s)}`);
}

function intOpt(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new PollenError('ERR_INVALID_REQUEST', `${what} must be a positive integer`);
  return n;
}

export function progressLine(job: JobBody): string {
  const p = job.progress;
  const peers = job.scope === 'all_peers' ? `, peers ${p.peers.done}/${p.peers.total}, copies ${p.tasks.done}/${p.tasks.total}` : '';
  const failed = p.tasks.failed + p.layers.failed > 0 ? `, failed ${p.layers.failed} layers/${p.tasks.failed} copies` : '';
  return `job ${job.id} ${job.phase}: layers ${p.layers.done}/${p.layers.total}${peers}${failed}`;
}

export function registerPreheat(program: Command): void {
  program
    .command('preheat')
    .description('preheat an image: have the seed (or every peer) hold its blobs before a rollout')
    .argument('<ref>', 'image reference (host/name:tag) or manifest URL (http(s)://host/v2/name/manifests/tag)')
    .option('--scope <scope>', 'single-seed-peer or all-peers', 'single-seed-peer')
    .option('--platform <os/arch>', 'platform to take from an index (default linux/amd64)')
    .option('--peers <id>', 'only these peer ids (repeatable)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--count <n>', 'at most this many peers')
    .option('--percentage <p>', 'this percentage of the peers')
    .option('--username <user>', 'registry user (with --password; or env POLLEN_PREHEAT_USERNAME)')
    .option('--password <password>', 'registry password (or env POLLEN_PREHEAT_PASSWORD)')
    .option('--timeout-ms <ms>', 'fail the job after this long')
    .option('--wait', 'follow the job until it ends; exit 1 when it fails')
    .option('--json', 'print the final job as JSON')
    .option('--supernode <url>', "the supernode's admin API URL (its --admin-listen; env POLLEN_SUPERNODE_ADMIN; default http://127.0.0.1:8003)")
    .option('--token <token>', 'admin token of the jobs API (env POLLEN_ADMIN_TOKEN)')
    .action(async (ref: string, o: PreheatOptions) => {
      const supernode = o.supernode ?? process.env.POLLEN_SUPERNODE_ADMIN ?? 'http://127.0.0.1:8003';
      const { JobsClient } = await import('../../src/preheat/jobs-client.ts');
      const client = new JobsClient({ baseUrl: supernode, token: o.token ?? process.env.POLLEN_ADMIN_TOKEN });
      const username = o.username ?? process.env.POLLEN_PREHEAT_USERNAME;
      const password = o.password ?? process.env.POLLEN_PREHEAT_PASSWORD;
      const args: PreheatArgsBody = {
        type: 'image',
        ...(/^https?:\/\//.test(ref) ? { url: ref } : { image: ref }),
        scope: scopeOf(o.scope),
        ...(o.platform ? { platform: o.platform } : {}),
        ...(o.peers ? { peers: o.peers } : {}),
        ...(o.count ? { count: intOpt(o.count, '--count') } : {}),
        ...(o.percentage ? { percentage: intOpt(o.percentage, '--percentage') } : {}),
        ...(username ? { username, password: password ?? '' } : {}),
        ...(o.timeoutMs ? { timeout_ms: intOpt(o.timeoutMs, '--timeout-ms') } : {}),
      };
      let job = await client.create({ type: 'preheat', args });
      const out = process.stdout;
      if (!o.wait) {
        out.write(o.json ? `${JSON.stringify(job)}\n` : `job ${job.id} created (${job.phase})\n`);
        return;
      }
      let last = '';
      const tty = out.isTTY === true;
      for (;;) {
        const line = progressLine(job);
        if (tty) out.write(`\r\x1b[2K${line}`);
        else if (line !== last) out.write(`${line}\n`);
        last = line;
        if (job.phase === 'succeeded' || job.phase === 'failed') break;
        await sleep(POLL_MS);
        job = await client.get(job.id);
      }
      if (tty) out.write('\n');
      if (o.json) out.write(`${JSON.stringify(job)}\n`);
      if (job.phase === 'failed') {
        process.stderr.write(`pollen: preheat job ${job.id} failed: ${job.reason ?? 'unknown reason'} (${job.code ?? 'no code'})\n`);
        process.exitCode = 1;
      }
    });
}
