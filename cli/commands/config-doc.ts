// `pollen config-doc`: prints the configuration tables of every daemon as Markdown (for the README).
import type { Command } from 'commander';
import { configMarkdown } from '../../src/config.ts';
import { PEER_SETTINGS } from '../../peer/config.ts';
import { SUPERNODE_SETTINGS } from '../../supernode/config.ts';

export function registerConfigDoc(program: Command): void {
  program
    .command('config-doc')
    .description('print the configuration tables (flags, env vars, defaults) as Markdown')
    .action(() => {
      process.stdout.write(`### pollen peer\n\n${configMarkdown(PEER_SETTINGS)}\n\n### pollen supernode\n\n${configMarkdown(SUPERNODE_SETTINGS)}\n`);
    });
}
