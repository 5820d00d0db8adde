// `pollen docs`: prints the README's reference tables (configuration of each daemon, error codes)
// from the code itself; a test checks that the README holds exactly these tables.
import type { Command } from 'commander';
import { CONFIG_FILE_DOC } from '../../src/config-file.ts';
import { configMarkdown } from '../../src/config.ts';
import { errorCodesMarkdown } from '../../src/errors.ts';
import { PEER_SETTINGS } from '../../peer/config.ts';
import { SUPERNODE_SETTINGS } from '../../supernode/config.ts';
import { START_EXTRA_SETTINGS } from '../start-settings.ts';

export function referenceTables(): { config: string; configFile: string; errors: string } {
  return {
    config: `#### pollen peer (and pollen start)\n\n${configMarkdown(PEER_SETTINGS)}\n\n#### pollen start (also)\n\n${configMarkdown(START_EXTRA_SETTINGS)}\n\n#### pollen supernode\n\n${configMarkdown(SUPERNODE_SETTINGS)}`,
    configFile: CONFIG_FILE_DOC,
    errors: errorCodesMarkdown(),
  };
}

export function registerDocs(program: Command): void {
  program
    .command('docs')
    .description('print the configuration tables, the config file format and the error codes as Markdown (as in the README)')
    .action(() => {
      const t = referenceTables();
      process.stdout.write(`${t.config}\n\n${t.configFile}\n\n${t.errors}\n`);
    });
}
