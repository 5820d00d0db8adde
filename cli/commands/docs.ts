// `pollen docs`: prints the README's reference tables (configuration of each daemon, error codes)
// from the code itself; a test checks that the README holds exactly these tables.
import type { Command } from 'commander';
import { configMarkdown } from '../../src/config.ts';
import { errorCodesMarkdown } from '../../src/errors.ts';
import { PEER_SETTINGS } from '../../peer/config.ts';
import { SUPERNODE_SETTINGS } from '../../supernode/config.ts';

export function referenceTables(): { config: string; errors: string } {
  return {
    config: `#### pollen peer (and pollen start)\n\n${configMarkdown(PEER_SETTINGS)}\n\n#### pollen supernode\n\n${configMarkdown(SUPERNODE_SETTINGS)}`,
    errors: errorCodesMarkdown(),
  };
}

export function registerDocs(program: Command): void {
  program
    .command('docs')
    .description('print the configuration and error-code tables as Markdown (as in the README)')
    .action(() => {
      const t = referenceTables();
      process.stdout.write(`${t.config}\n\n${t.errors}\n`);
    });
}
