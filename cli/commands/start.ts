// `pollen start`: everything on one host in one process — a supernode and a peer mirror, each with
// its embedded storage under one data directory. The quickest way to run Pollen.
import { join } from 'node:path';
import type { Command } from 'commander';
import { redactConfig } from '../../src/config.ts';
import { PEER_SETTINGS, peerConfigFrom } from '../../peer/config.ts';
import { Peer } from '../../peer/peer.ts';
import { SUPERNODE_SETTINGS, supernodeConfigFrom } from '../../supernode/config.ts';
import { Supernode } from '../../supernode/supernode.ts';
import { runUntilSignal } from '../daemon.ts';
import { createLogger } from '../logger.ts';
import { addConfigOptions, configFromCommand } from '../options.ts';
import { requireSafeWire } from './secret.ts';

export function registerStart(program: Command): void {
  const cmd = program
    .command('start')
    .description('run a supernode and a peer in one process (all-in-one, embedded storage)')
    .option('--supernode-listen <addr>', 'address of the supernode HTTP API', '127.0.0.1:8002');
  addConfigOptions(cmd, PEER_SETTINGS).action(async () => {
    const values = configFromCommand(cmd, PEER_SETTINGS);
    const peerConfig = peerConfigFrom({ ...values, data: join(values.data as string, 'peer') });
    // The all-in-one peer always runs P2P (with its own supernode): its wire must not be open.
    requireSafeWire(peerConfig);
    const logger = createLogger(peerConfig.logLevel, 'pollen');
    const supernodeValues = configFromCommand(cmd, SUPERNODE_SETTINGS.filter((s) => s.key !== 'listen' && s.key !== 'data'));
    const supernodeConfig = supernodeConfigFrom({
      ...supernodeValues,
      listen: (cmd.opts() as { supernodeListen: string }).supernodeListen,
      data: join(values.data as string, 'supernode'),
    });
    logger.info({ config: redactConfig(PEER_SETTINGS, values), supernode: supernodeConfig.listen }, 'starting pollen (all-in-one)');
    const supernode = new Supernode({ logger }, supernodeConfig);
    await supernode.start();
    // The all-in-one peer joins its own supernode unless told otherwise.
    const peer = new Peer({ logger }, peerConfig.supernodes.length > 0 ? peerConfig : { ...peerConfig, supernodes: [supernode.url] });
    try {
      await peer.start();
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
