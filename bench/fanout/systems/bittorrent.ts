// Baseline (c): plain BitTorrent with Debian's aria2c and opentracker. The tracker runs on the
// supernode host; an aria2c seeder on the registry host has the image's blobs (the origin); every
// peer host runs aria2c on one multi-file .torrent of those blobs and keeps seeding when done.
// Completion is the moment aria2c runs its on-bt-download-complete hook (all pieces verified).
// Ports are fixed inside each host's namespace: those belong to this run alone.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findTool, run } from '../../testbed/exec.ts';
import type { NsProcess } from '../../testbed/ns-process.ts';
import type { Host } from '../../testbed/testbed.ts';
import { blobPath } from '../image.ts';
import { waitHttp } from '../ns-tools.ts';
import type { DaemonUsage, FanoutContext, FanoutSystem, PullOutcome } from '../system.ts';
import { choosePieceLength, makeTorrent, percentEncode, type Torrent } from '../torrent.ts';

const TRACKER_PORT = 6969;
const BT_PORT = 6881;
const TRACKER_INTERVAL_S = 2;
const POLL_MS = 50;

export class BitTorrentSystem implements FanoutSystem {
  readonly name = 'bittorrent';
  readonly description = 'aria2c peers + opentracker on the supernode host + an aria2c seeder on the registry host';
  private procs = new Map<string, NsProcess>();
  private stopped = new Map<string, NsProcess>();
  private torrentFile = '';
  private hook = '';

  async unavailableReason(): Promise<string | undefined> {
    try {
      findTool('aria2c', 'aria2');
      findTool('opentracker', 'opentracker');
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async prepare(ctx: FanoutContext): Promise<void> {
    this.procs = new Map();
    this.stopped = new Map();
    const dir = join(ctx.workDir, 'bittorrent');
    await mkdir(dir, { recursive: true });
    const announce = `http://${ctx.supernode.ip}:${TRACKER_PORT}/announce`;
    const files = ctx.image.blobs.map((b) => ({ path: [b.digest.slice(7)], source: blobPath(ctx.image, b.digest), length: b.size }));
    const torrent = await makeTorrent('sha256', files, choosePieceLength(ctx.image.totalBytes), announce);
    this.torrentFile = join(dir, 'image.torrent');
    await writeFile(this.torrentFile, torrent.metainfo);
    this.hook = join(dir, 'on-complete.sh');
    await writeFile(this.hook, '#!/bin/sh\ndate +%s%N > "$POLLEN_BENCH_MARKER"\n');
    await chmod(this.hook, 0o755);
    await this.startTracker(ctx, dir, torrent);
    const seeder = ctx.bed.spawn(ctx.registry, findTool('aria2c', 'aria2'), [
      ...this.commonArgs(),
      `--dir=${join(ctx.image.layoutDir, 'blobs')}`,
      '--check-integrity=true',
      this.torrentFile,
    ]);
    this.procs.set(`seeder@${ctx.registry.name}`, seeder);
    await this.waitSeeded(ctx, torrent, seeder);
  }

  private commonArgs(): string[] {
    return [
      '--enable-dht=false',
      '--enable-dht6=false',
      '--bt-enable-lpd=false',
      '--enable-peer-exchange=true',
      '--disable-ipv6=true',
      `--listen-port=${BT_PORT}`,
      '--seed-ratio=0.0',
      `--bt-tracker-interval=${TRACKER_INTERVAL_S}`,
      '--file-allocation=none',
      '--allow-overwrite=true',
      '--auto-file-renaming=false',
      '--summary-interval=0',
      '--console-log-level=warn',
    ];
  }

  private async startTracker(ctx: FanoutContext, dir: string, torrent: Torrent): Promise<void> {
    // opentracker (Debian builds it whitelist-only) chroots into its root dir and drops to `nobody`.
    const root = join(dir, 'tracker');
    await mkdir(root, { recursive: true });
    await chmod(root, 0o755);
    await writeFile(join(root, 'whitelist.txt'), `${torrent.infoHash.toString('hex')}\n`, { mode: 0o644 });
    await writeFile(join(root, 'opentracker.conf'), `access.whitelist /whitelist.txt\ntracker.rootdir ${root}\n`);
    const tracker = ctx.bed.spawn(ctx.supernode, findTool('opentracker', 'opentracker'), [
      '-f',
      join(root, 'opentracker.conf'),
      '-i',
      ctx.supernode.ip,
      '-p',
      String(TRACKER_PORT),
      '-P',
      String(TRACKER_PORT),
    ]);
    this.procs.set(`tracker@${ctx.supernode.name}`, tracker);
    await waitHttp(ctx.bed, ctx.supernode, `http://${ctx.supernode.ip}:${TRACKER_PORT}/stats`).catch((err: Error) => {
      throw new Error(`opentracker did not start: ${err.message}\n${tracker.output().slice(-2000)}`);
    });
  }

  /** Waits until the tracker counts the seeder as complete (it has verified every piece). */
  private async waitSeeded(ctx: FanoutContext, torrent: Torrent, seeder: NsProcess): Promise<void> {
    const curl = findTool('curl', 'curl');
    const url = `http://${ctx.supernode.ip}:${TRACKER_PORT}/scrape?info_hash=${percentEncode(torrent.infoHash)}`;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (!seeder.running) throw new Error(`the aria2c seeder exited: ${seeder.output().slice(-2000)}`);
      const body = await run(findTool('ip', 'iproute2'), ['netns', 'exec', ctx.supernode.ns, curl, '-s', '--max-time', '2', url], { allowFail: true });
      if (Number(/8:completei(\d+)e/.exec(body)?.[1] ?? 0) >= 1) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`the aria2c seeder never announced itself complete to the tracker: ${seeder.output().slice(-2000)}`);
  }

  async pull(ctx: FanoutContext, host: Host, t0: number): Promise<PullOutcome> {
    const marker = join(ctx.workDir, 'bittorrent', `done-${host.name}`);
    const proc = ctx.bed.spawn(
      host,
      findTool('aria2c', 'aria2'),
      [...this.commonArgs(), `--dir=${join(ctx.workDir, 'bittorrent', `data-${host.name}`)}`, `--on-bt-download-complete=${this.hook}`, this.torrentFile],
      { env: { ...process.env, POLLEN_BENCH_MARKER: marker } },
    );
    this.procs.set(`aria2c@${host.name}`, proc);
    const deadline = t0 + ctx.pullTimeoutMs;
    while (Date.now() < deadline) {
      const stamp = await readFile(marker, 'utf8').catch(() => '');
      if (/^\d+\s*$/.test(stamp)) {
        const doneMs = Number(BigInt(stamp.trim()) / 1_000_000n);
        return { ok: true, seconds: (doneMs - t0) / 1000, client: proc.usage(), clientIsDaemon: true };
      }
      if (!proc.running) return { ok: false, seconds: (Date.now() - t0) / 1000, client: proc.usage(), clientIsDaemon: true, error: `aria2c exited: ${proc.output().slice(-500)}` };
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    return { ok: false, seconds: (Date.now() - t0) / 1000, client: proc.usage(), clientIsDaemon: true, error: 'timed out' };
  }

  logs(): Record<string, string> {
    return Object.fromEntries([...this.stopped].map(([name, proc]) => [name, proc.output()]));
  }

  usageNow(): DaemonUsage {
    return Object.fromEntries([...this.procs].map(([name, proc]) => [name, proc.usage()]));
  }

  async finish(): Promise<DaemonUsage> {
    const usage: DaemonUsage = {};
    for (const [name, proc] of this.procs) usage[name] = await proc.stop(3000);
    for (const [name, proc] of this.procs) this.stopped.set(name, proc);
    this.procs.clear();
    return usage;
  }
}
