// An OCI runtime bundle from a committed snapshot: `rootfs/` a private copy of the snapshot (so
// the container's writes never reach the shared snapshot), `config.json` from the image config,
// and a marker naming the snapshot (for `pollen snapshots ls` and prune). The bundle directory is
// 0700, as containerd makes its bundles: the rootfs keeps the image's modes (setuid binaries,
// world-writable directories, device nodes), and no other local user may reach them.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Digest } from '../digest.ts';
import { PollenError } from '../errors.ts';
import type { ImageConfig } from '../oci/image.ts';
import { buildRuntimeSpec, type RuntimeSpecOptions } from './runtime-spec.ts';
import { privateDir, type SnapshotStore } from './snapshot-store.ts';
import { resolveUser } from './user.ts';

const run = promisify(execFile);

export interface BundleOptions extends RuntimeSpecOptions {
  /** Rich mode: make this static init binary pid 1 (found on the host). */
  readonly rich?: boolean;
}

export async function writeBundle(
  deps: { snapshots: SnapshotStore },
  opts: BundleOptions & { bundleDir: string; chainId: Digest; image: ImageConfig; imageName: string },
): Promise<void> {
  const rootfs = join(opts.bundleDir, 'rootfs');
  await mkdir(dirname(opts.bundleDir), { recursive: true });
  await privateDir(opts.bundleDir);
  if (existsSync(rootfs) && (await readdir(rootfs)).length > 0) {
    throw new PollenError('ERR_INVALID_REQUEST', `bundle ${opts.bundleDir} already has a non-empty rootfs: remove it first`, { bundle: opts.bundleDir });
  }
  await rm(rootfs, { recursive: true, force: true });
  // Copy under a temporary name so an interrupted copy never looks like a finished rootfs.
  const tmp = join(opts.bundleDir, '.rootfs.partial');
  await rm(tmp, { recursive: true, force: true });
  await run('cp', ['-a', '--reflink=auto', deps.snapshots.fsPath(opts.chainId), tmp]);
  await rename(tmp, rootfs);
  const user = await resolveUser(rootfs, opts.image.config.User);
  let richInit = opts.richInit;
  if (opts.rich && !richInit) richInit = findInit();
  const spec = buildRuntimeSpec(opts.image, user, { ...opts, richInit });
  await writeFile(join(opts.bundleDir, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
  await deps.snapshots.recordBundle(opts.bundleDir, opts.chainId, opts.imageName);
}

/** Candidate static inits: Debian's tini-static (package tini), then a static dumb-init. */
export const RICH_INIT_CANDIDATES = ['/usr/bin/tini-static', '/usr/bin/dumb-init'];

function findInit(): string {
  const found = RICH_INIT_CANDIDATES.find((p) => existsSync(p));
  if (!found) throw new PollenError('ERR_INVALID_CONFIG', `--rich needs a static init: none of ${RICH_INIT_CANDIDATES.join(', ')} exists (apt-get install tini)`);
  return found;
}
