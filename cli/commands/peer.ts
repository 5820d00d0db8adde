// `pollen peer`: the per-host agent, registry mirror and HTTP proxy of the host's container engine.
import type { Command } from 'commander';
import { redactConfig } from '../../src/config.ts';
import { PEER_SETTINGS, peerConfigFrom } from '../../peer/config.ts';
import { runUntilSignal, startOrClose } from '../daemon.ts';
import { createLogger } from '../logger.ts';
import { packageVersion } from '../package-root.ts';
import { addConfigOptions, configFilePath, configFromCommand } from '../options.ts';
import { requireSafeWire } from './secret.ts';

export function registerPeer(program: Command): void {
  const cmd = program.command('peer').description('run a peer: registry mirror and HTTP proxy for the local container engine');
  addConfigOptions(cmd, PEER_SETTINGS).action(async () => {
    const values = configFromCommand(cmd, PEER_SETTINGS);
    const config = peerConfigFrom(values);
    // P2P (and its wire listener) runs only with a supernode.
    if (config.supernodes.length > 0) requireSafeWire(config);
    const logger = createLogger(config.logLevel, 'pollen-peer');
    logger.info({ config: redactConfig(PEER_SETTINGS, values), configFile: configFilePath(cmd) }, 'starting peer');
    // Loaded here, not at the top: `pollen` loads only the command it runs (a peer's start-up CPU).
    const { Peer } = await import('../../peer/peer.ts');
    const peer = new Peer({ logger, version: packageVersion(import.meta.dirname) }, config);
    await startOrClose(peer);
    await runUntilSignal(logger, peer);
  });
}
