// `pollen configure containerd|docker|podman`: points a container engine at the Pollen peer, as
// Dragonfly's dfinit does. Prints the engine's configuration, or with --write merges it into the
// engine's files (atomically, keeping the previous file as FILE.pollen-bak).
import { copyFile, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Argument, type Command } from 'commander';
import { DEFAULT_CONFIG_DIRS, ENGINES, planEngineConfig, type Engine } from '../../src/engine-config/engines.ts';

interface ConfigureOptions {
  mirror: string;
  registry: string[];
  write?: boolean;
  configDir?: string;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function writeAtomically(path: string, content: string, previous: string | undefined): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const mode = previous === undefined ? 0o644 : (await stat(path)).mode & 0o7777;
  if (previous !== undefined) await copyFile(path, `${path}.pollen-bak`);
  const tmp = `${path}.pollen-${process.pid}.tmp`;
  await writeFile(tmp, content, { mode });
  await rename(tmp, path);
}

export function registerConfigure(program: Command): void {
  program
    .command('configure')
    .description("point a container engine at the Pollen peer: print (or --write) containerd's hosts.toml, docker's daemon.json or podman's registries.conf")
    .addArgument(new Argument('<engine>', 'containerd, docker, or podman (also CRI-O, skopeo, buildah)').choices(ENGINES))
    .option('--mirror <url>', "the peer's mirror address", 'http://127.0.0.1:65001')
    .option('--registry <host>', 'registry whose pulls go through the peer (docker.io for dockerd); repeatable', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--write', "merge into the engine's files instead of printing them")
    .option('--config-dir <dir>', `the engine's configuration directory (${ENGINES.map((e) => `${e}: ${DEFAULT_CONFIG_DIRS[e]}`).join(', ')})`)
    .action(async (engine: Engine, opts: ConfigureOptions) => {
      const plan = planEngineConfig(engine, { mirror: opts.mirror, registries: opts.registry, configDir: opts.configDir });
      for (const file of plan.files) {
        const previous = await readIfExists(file.path);
        const content = file.render(previous);
        if (content === previous) {
          process.stderr.write(`pollen configure: ${file.path} is already configured\n`);
        } else if (opts.write) {
          await writeAtomically(file.path, content, previous);
          process.stderr.write(`pollen configure: wrote ${file.path}${previous === undefined ? '' : ` (previous file: ${file.path}.pollen-bak)`}\n`);
        } else {
          process.stderr.write(`pollen configure: ${file.path} would be (run with --write to write it):\n`);
          process.stdout.write(content);
        }
      }
      for (const note of plan.notes) process.stderr.write(`pollen configure: ${note}\n`);
    });
}
