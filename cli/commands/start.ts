// `pollen start`: everything on one host in one process — a supernode and a peer mirror, each with
// its embedded storage under one data directory. The quickest way to run Pollen.
import { join } from 'node:path';
import type { Command } from 'commander';
import { redactConfig } from '../../src/config.ts';
import { PEER_SETTINGS, peerConfigFrom } from '../../peer/config.ts';
import { supernodeConfigFrom } from '../../supernode/config.ts';
import { runUntilSignal, startOrClose } from '../daemon.ts';
import { createLogger } from '../logger.ts';
import { packageVersion } from '../package-root.ts';
import { addConfigOptions, configFileFromCommand, configFilePath, configFromCommand } from '../options.ts';
import { START_EXTRA_SETTINGS, START_SETTINGS, START_SUPERNODE_SETTINGS } from '../start-settings.ts';
import { requireSafeWire } from './secret.ts';

export function registerStart(program: Command): void {
  const cmd = program
    .command('start')
    .description('run a supernode and a peer in one process (all-in-one, embedded storage)');
  addConfigOptions(cmd, START_SETTINGS).action(async () => {
    // One flat config file for both: checked against every key `start` takes.
    const file = configFileFromCommand(cmd, START_SETTINGS);
    const values = configFromCommand(cmd, PEER_SETTINGS, process.env, file);
    const extra = configFromCommand(cmd, START_EXTRA_SETTINGS, process.env, file);
    const peerConfig = peerConfigFrom({ ...values, data: join(values.data as string, 'peer') });
    // The all-in-one peer always runs P2P (with its own supernode): its wire must not be open.
    requireSafeWire(peerConfig);
    const logger = createLogger(peerConfig.logLevel, 'pollen');
    const supernodeValues = configFromCommand(cmd, START_SUPERNODE_SETTINGS, process.env, file);
    const supernodeConfig = supernodeConfigFrom({
      ...supernodeValues,
      listen: extra.supernodeListen,
      data: join(values.data as string, 'supernode'),
    });
    logger.info(
      { config: { ...redactConfig(PEER_SETTINGS, values), ...redactConfig(START_EXTRA_SETTINGS, extra) }, configFile: configFilePath(cmd) },
      'starting pollen (all-in-one)',
    );
    const [{ Supernode }, { Peer }] = await Promise.all([import('../../supernode/supernode.ts'), import('../../peer/peer.ts')]);
    const supernode = new Supernode({ logger }, supernodeConfig);
    await startOrClose(supernode);
    // The all-in-one peer joins its own supernode unless told otherwise.
    const peer = new Peer({ logger, version: packageVersion(import.meta.dirname) }, peerConfig.supernodes.length > 0 ? peerConfig : { ...peerConfig, supernodes: [supernode.url] });
    try {
      await startOrClose(peer);
    } catch (err) {
      await supernode.close();
      throw err;
    }
    await runUntilSignal(logger, {
      close: async () => {
        await peer.close();
        await supernode.close();
      },
    });
  });
}
