// `pollen supernode`: the scheduler, tracker and seed of a Pollen cluster.
import type { Command } from 'commander';
import { redactConfig } from '../../src/config.ts';
import { SUPERNODE_SETTINGS, supernodeConfigFrom } from '../../supernode/config.ts';
import { runUntilSignal, startOrClose } from '../daemon.ts';
import { createLogger } from '../logger.ts';
import { addConfigOptions, configFilePath, configFromCommand } from '../options.ts';

export function registerSupernode(program: Command): void {
  const cmd = program.command('supernode').description('run a supernode: peer registry, piece scheduler, seed (back-to-source)');
  addConfigOptions(cmd, SUPERNODE_SETTINGS).action(async () => {
    const values = configFromCommand(cmd, SUPERNODE_SETTINGS);
    const config = supernodeConfigFrom(values);
    const logger = createLogger(config.logLevel, 'pollen-supernode');
    logger.info({ config: redactConfig(SUPERNODE_SETTINGS, values), configFile: configFilePath(cmd) }, 'starting supernode');
    const { Supernode } = await import('../../supernode/supernode.ts');
    const supernode = new Supernode({ logger }, config);
    await startOrClose(supernode);
    await runUntilSignal(logger, supernode);
  });
}
