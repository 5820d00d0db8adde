// Snapshots keyed by chainID, stored as whole directories ("native" snapshotter layout):
//   ROOT/snapshots/<chainID hex>/{fs/, meta.json}   committed, never changed afterwards
//   ROOT/tmp/<random>/fs                            being unpacked; removed on open (never visible)
//   ROOT/bundles/<sha256(bundle path)>.json         which bundle was made from which snapshot
// A child is prepared by cloning its parent with hardlinks (`cp -al`: directories are copied,
// everything else shares the parent's inodes) and the layer applier never changes an existing
// non-directory in place, so the parent stays untouched. Commit is one rename: a killed unpack
// leaves only a tmp directory, which the next open removes.
//
// The store is private to Pollen's user, as containerd's snapshot roots are: ROOT, its three
// directories and every snapshot directory are 0700 whatever the umask and whether they existed
// before. Inside, each rootfs keeps the image's own modes (a setuid binary stays setuid), which
// nobody else can reach through the 0700 parents.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { digestHex, type Digest } from '../digest.ts';
import { PollenError } from '../errors.ts';
import { processAlive } from '../process-alive.ts';

const run = promisify(execFile);

export interface SnapshotInfo {
  readonly chainId: Digest;
  readonly parent: Digest | undefined;
  readonly diffId: Digest;
  /** Bytes of file content the layer wrote. */
  readonly size: number;
  readonly createdAt: string;
}

export interface BundleRef {
  readonly bundle: string;
  readonly chainId: Digest;
  readonly image: string;
  readonly createdAt: string;
}

export interface ActiveSnapshot {
  /** The directory to apply the layer into. */
  readonly dir: string;
  commit(info: Omit<SnapshotInfo, 'createdAt'>): Promise<void>;
  abort(): Promise<void>;
}

export class SnapshotStore {
  private constructor(readonly root: string) {}

  /**
   * Opens (creating) a store and removes what interrupted unpacks left behind: tmp entries are
   * named after the pid that made them, so those of a pull still running elsewhere are kept.
   */
  static async open(root: string): Promise<SnapshotStore> {
    const abs = resolve(root);
    await privateDir(abs, true);
    for (const d of ['snapshots', 'tmp', 'bundles']) await privateDir(join(abs, d));
    // Snapshots committed by an older Pollen (or under another umask) become private too.
    for (const hex of await readdir(join(abs, 'snapshots'))) await chmod(join(abs, 'snapshots', hex), PRIVATE_DIR_MODE).catch(() => {});
    for (const name of await readdir(join(abs, 'tmp'))) {
      const pid = Number(name.split('-')[0]);
      // A live process's directory stays (ours too: another store object may be unpacking in it).
      if (!Number.isSafeInteger(pid) || !processAlive(pid)) await rm(join(abs, 'tmp', name), { recursive: true, force: true });
    }
    return new SnapshotStore(abs);
  }

  fsPath(chainId: Digest): string {
    return join(this.root, 'snapshots', digestHex(chainId), 'fs');
  }

  async stat(chainId: Digest): Promise<SnapshotInfo | undefined> {
    const text = await readFile(join(this.root, 'snapshots', digestHex(chainId), 'meta.json'), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as SnapshotInfo);
  }

  async list(): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for (const hex of await readdir(join(this.root, 'snapshots'))) {
      const info = await this.stat(`sha256:${hex}`);
      if (info) out.push(info);
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** A new snapshot on top of `parent` (a committed one) or empty. */
  async prepare(parent: Digest | undefined): Promise<ActiveSnapshot> {
    const tmp = join(this.root, 'tmp', `${process.pid}-${randomBytes(8).toString('hex')}`);
    await privateDir(tmp);
    const dir = join(tmp, 'fs');
    if (parent) {
      if (!(await this.stat(parent))) throw new PollenError('ERR_NOT_FOUND', `parent snapshot ${parent} does not exist`, { chainId: parent });
      await run('cp', ['-a', '-l', this.fsPath(parent), dir]);
    } else {
      await mkdir(dir, { mode: 0o755 });
    }
    let settled = false;
    return {
      dir,
      commit: async (info) => {
        if (settled) throw new PollenError('ERR_CLOSED', 'snapshot already committed or aborted');
        settled = true;
        await writeFile(join(tmp, 'meta.json'), JSON.stringify({ ...info, createdAt: new Date().toISOString() }));
        const final = join(this.root, 'snapshots', digestHex(info.chainId));
        try {
          await rename(tmp, final);
        } catch (err) {
          // Someone committed the same chainID first: theirs is as good as ours.
          await rm(tmp, { recursive: true, force: true });
          if (!(await this.stat(info.chainId))) throw err;
        }
      },
      abort: async () => {
        settled = true;
        await rm(tmp, { recursive: true, force: true });
      },
    };
  }

  async recordBundle(bundle: string, chainId: Digest, image: string): Promise<void> {
    const ref: BundleRef = { bundle: resolve(bundle), chainId, image, createdAt: new Date().toISOString() };
    await writeFile(this.bundleRefPath(ref.bundle), JSON.stringify(ref));
    await writeFile(join(ref.bundle, BUNDLE_MARKER), JSON.stringify(ref));
  }

  /** Bundles recorded whose directory still holds the marker naming the same snapshot. */
  async bundles(): Promise<BundleRef[]> {
    const out: BundleRef[] = [];
    for (const f of await readdir(join(this.root, 'bundles'))) {
      const ref = JSON.parse(await readFile(join(this.root, 'bundles', f), 'utf8')) as BundleRef;
      const marker = await readFile(join(ref.bundle, BUNDLE_MARKER), 'utf8').catch(() => undefined);
      if (marker !== undefined && (JSON.parse(marker) as BundleRef).chainId === ref.chainId) out.push(ref);
      else await rm(join(this.root, 'bundles', f), { force: true });
    }
    return out;
  }

  /** chainIDs each snapshot is needed by: bundles made from it or from a descendant, and children. */
  async usage(): Promise<Map<Digest, { bundles: string[]; children: Digest[] }>> {
    const snaps = await this.list();
    const byId = new Map(snaps.map((s) => [s.chainId, s]));
    const use = new Map<Digest, { bundles: string[]; children: Digest[] }>(snaps.map((s) => [s.chainId, { bundles: [], children: [] }]));
    for (const s of snaps) if (s.parent) use.get(s.parent)?.children.push(s.chainId);
    for (const b of await this.bundles()) {
      for (let id: Digest | undefined = b.chainId; id; id = byId.get(id)?.parent) use.get(id)?.bundles.push(b.bundle);
    }
    return use;
  }

  /** Removes one snapshot; refuses while a bundle or a child uses it, unless `force`. */
  async remove(chainId: Digest, options: { force?: boolean } = {}): Promise<void> {
    const u = (await this.usage()).get(chainId);
    if (!u) throw new PollenError('ERR_NOT_FOUND', `no snapshot ${chainId}`, { chainId });
    if (!options.force && (u.bundles.length > 0 || u.children.length > 0)) {
      throw new PollenError('ERR_SNAPSHOT_IN_USE', `snapshot ${chainId} is used by ${[...u.bundles, ...u.children].join(', ')}`, { chainId });
    }
    await this.discard(chainId);
  }

  /** Removes every snapshot no live bundle needs; returns what was removed. */
  async prune(): Promise<SnapshotInfo[]> {
    const use = await this.usage();
    const removed: SnapshotInfo[] = [];
    for (const s of await this.list()) {
      if ((use.get(s.chainId)?.bundles.length ?? 0) > 0) continue;
      await this.discard(s.chainId);
      removed.push(s);
    }
    return removed;
  }

  private async discard(chainId: Digest): Promise<void> {
    // Rename first so a half-removed snapshot is never visible under its chainID.
    const dying = join(this.root, 'tmp', `${process.pid}-rm-${digestHex(chainId).slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    await rename(join(this.root, 'snapshots', digestHex(chainId)), dying);
    await rm(dying, { recursive: true, force: true });
  }

  private bundleRefPath(bundle: string): string {
    return join(this.root, 'bundles', `${createHash('sha256').update(bundle).digest('hex')}.json`);
  }
}

/** Mode of the store's directories and of bundle directories: only Pollen's user gets in. */
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates `dir` (and, with `parents`, missing parents) and makes it 0700 even if it existed.
 * A directory other users share (sticky, like /tmp) or `/` is refused rather than taken over.
 */
export async function privateDir(dir: string, parents = false): Promise<void> {
  const existing = await stat(dir).catch(() => undefined);
  if (existing && (existing.mode & 0o1000 || resolve(dir) === '/')) {
    throw new PollenError('ERR_INVALID_CONFIG', `${dir} is a directory other users share: Pollen makes its store and bundle directories 0700, so give one of their own (e.g. ${join(dir, 'pollen')})`, { dir });
  }
  if (parents) await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  else {
    await mkdir(dir, { mode: PRIVATE_DIR_MODE }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
  await chmod(dir, PRIVATE_DIR_MODE);
}

/** The file in a bundle directory that names the snapshot it was made from. */
export const BUNDLE_MARKER = 'pollen-bundle.json';
