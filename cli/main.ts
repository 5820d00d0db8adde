// The composition root of the `pollen` command: each subcommand lives in cli/commands/ and wires
// the library (src/) and the daemons (supernode/, peer/) together. Only this layer reads argv and env.
import { Command, CommanderError } from 'commander';
import { isPollenError } from '../src/errors.ts';
import { registerBench } from './commands/bench.ts';
import { registerConfigure } from './commands/configure.ts';
import { registerDocs } from './commands/docs.ts';
import { registerGc } from './commands/gc.ts';
import { registerPeer } from './commands/peer.ts';
import { registerPreheat } from './commands/preheat.ts';
import { registerPull } from './commands/pull.ts';
import { registerSnapshots } from './commands/snapshots.ts';
import { registerStart } from './commands/start.ts';
import { registerSupernode } from './commands/supernode.ts';

export function buildProgram(): Command {
  const program = new Command('pollen')
    .description('Peer-to-peer container image distribution: registry mirror, P2P blob sharing, snapshotter')
    .showHelpAfterError()
    .exitOverride();
  registerStart(program);
  registerSupernode(program);
  registerPeer(program);
  registerPreheat(program);
  registerDocs(program);
  registerBench(program);
  registerPull(program);
  registerSnapshots(program);
  registerGc(program);
  registerConfigure(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    const message = isPollenError(err) ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err);
    process.stderr.write(`pollen: ${message}\n`);
    if (!isPollenError(err) && err instanceof Error && err.stack && process.env.POLLEN_DEBUG) process.stderr.write(`${err.stack}\n`);
    process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 1;
  }
}
