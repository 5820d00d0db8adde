// `pollen snapshots ls | rm | prune`: what the snapshot store holds, which bundles use what, and
// reclaiming what no bundle uses.
import type { Command } from 'commander';
import { parseDigest, type Digest } from '../../src/digest.ts';
import { PollenError } from '../../src/errors.ts';
import type { SnapshotStore } from '../../src/snapshot/snapshot-store.ts';
import { snapshotRootOption } from './pull.ts';

const size = (n: number): string => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

export function registerSnapshots(program: Command): void {
  const cmd = program.command('snapshots').description('list, remove and prune unpacked layer snapshots');
  cmd
    .command('ls')
    .description('list snapshots (chainID, parent, size, bundles using them)')
    .option('--json', 'one JSON object per line')
    .addOption(snapshotRootOption())
    .action(async (o: { root: string; json?: boolean }) => {
      const store = await openSnapshots(o.root);
      const use = await store.usage();
      const rows = (await store.list()).map((s) => ({ ...s, bundles: use.get(s.chainId)?.bundles ?? [], children: use.get(s.chainId)?.children ?? [] }));
      if (o.json) {
        for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      process.stdout.write(`${'CHAINID'.padEnd(20)} ${'PARENT'.padEnd(20)} ${'SIZE'.padStart(10)}  BUNDLES\n`);
      for (const r of rows) {
        process.stdout.write(`${r.chainId.slice(7, 19).padEnd(20)} ${(r.parent?.slice(7, 19) ?? '-').padEnd(20)} ${size(r.size).padStart(10)}  ${r.bundles.join(', ') || '-'}\n`);
      }
    });
  cmd
    .command('rm')
    .description('remove snapshots (refused while a bundle or child snapshot uses one, unless --force)')
    .argument('<chainid...>', 'chainIDs (sha256:... or a unique hex prefix)')
    .option('--force', 'remove even when in use')
    .addOption(snapshotRootOption())
    .action(async (ids: string[], o: { root: string; force?: boolean }) => {
      const store = await openSnapshots(o.root);
      const all = (await store.list()).map((s) => s.chainId);
      for (const id of ids) {
        await store.remove(matchId(all, id), { force: o.force === true });
        process.stdout.write(`removed ${id}\n`);
      }
    });
  cmd
    .command('prune')
    .description('remove every snapshot that no existing bundle needs')
    .addOption(snapshotRootOption())
    .action(async (o: { root: string }) => {
      const store = await openSnapshots(o.root);
      const removed = await store.prune();
      const bytes = removed.reduce((n, s) => n + s.size, 0);
      process.stdout.write(`pruned ${removed.length} snapshots, ${size(bytes)} of layer content\n`);
    });
}

function matchId(all: readonly Digest[], id: string): Digest {
  if (id.startsWith('sha256:')) return parseDigest(id);
  const hits = all.filter((d) => d.slice(7).startsWith(id));
  if (hits.length !== 1) throw new PollenError('ERR_NOT_FOUND', `${hits.length === 0 ? 'no' : 'more than one'} snapshot matches ${id}`, { id });
  return hits[0]!;
}

/** The snapshot store, loaded by the commands that use it (not at every `pollen` start). */
async function openSnapshots(root: string): Promise<SnapshotStore> {
  const { SnapshotStore } = await import('../../src/snapshot/snapshot-store.ts');
  return SnapshotStore.open(root);
}
