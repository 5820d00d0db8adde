// Applies one layer (an uncompressed tar stream) on top of a directory, with the semantics
// containerd's and umoci's appliers share: whiteouts `.wh.<name>` and opaque directories
// `.wh..wh..opq` (which remove only what lower layers put there, whatever their position in the
// tar), a directory replaced by a file and the reverse, hardlinks (to this layer or lower ones),
// symlinks never followed, ownership then mode (so setuid/setgid survive chown), mtimes
// (directories at the end), PAX names, `SCHILY.xattr.*`, device nodes and fifos.
//
// Safety: every entry's parent is resolved inside the root (secure-join), so `..`, absolute names,
// a symlink to the outside followed by a file beneath it, a hardlink or a whiteout that escapes
// all land inside the root. Such entries are reported in `warnings`. An existing non-directory is
// never modified in place (it is unlinked and recreated), so a snapshot cloned from its parent by
// hardlinks never changes the parent; a hardlink entry whose metadata would change an inode this
// layer did not create first copies that inode up (see `hardlink`). Every call that changes
// metadata acts on a file descriptor we opened or on a path whose last component is not followed
// (lchown, lutimes, `setfattr -h`; chmod only on what lstat showed is not a symlink), and the
// deferred directory times are applied on paths resolved again, symlink-free, at the end.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, rename, rm, symlink, type FileHandle } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { posix } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../digest.ts';
import { PollenError, toPollenError } from '../errors.ts';
import { cleanEntryName, secureJoin } from './secure-join.ts';
import { makeNode, setXattr } from './special-files.ts';
import { createTarExtract, entryMeta, entryXattrs, type Header as Headers } from './tar-reader.ts';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
const MAX_WARNINGS = 100;
const run = promisify(execFile);
const WRITE_BATCH_BYTES = 1024 * 1024;

async function writeAll(fh: FileHandle, buffers: Buffer[]): Promise<void> {
  let total = buffers.reduce((n, b) => n + b.length, 0);
  let { bytesWritten } = await fh.writev(buffers);
  while (bytesWritten < total) {
    // A short write (rare on regular files): continue with what is left.
    const rest = Buffer.concat(buffers).subarray(bytesWritten);
    total = rest.length;
    buffers = [rest];
    ({ bytesWritten } = await fh.writev(buffers));
  }
}

export interface ApplyWarning {
  readonly entry: string;
  readonly reason: string;
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar as it was read. */
  readonly diffId: Digest;
  readonly entries: number;
  /** Bytes of regular file content written. */
  readonly fileBytes: number;
  /** Entries that were redirected inside the root or skipped, and why. */
  readonly warnings: readonly ApplyWarning[];
}

export interface ApplyOptions {
  readonly signal?: AbortSignal;
  /** Called with the number of tar bytes consumed so far. */
  readonly onTarBytes?: (bytes: number) => void;
}

export async function applyLayer(root: string, tar: Readable, options: ApplyOptions = {}): Promise<ApplyResult> {
  const applier = new LayerApplier(root);
  const hash = createHash('sha256');
  let tarBytes = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      tarBytes += chunk.length;
      options.onTarBytes?.(tarBytes);
      cb(null, chunk);
    },
  });
  const ex = createTarExtract();
  const feeding = pipeline(tar, hasher, ex, { signal: options.signal });
  feeding.catch(() => {}); // surfaced below, after the entry loop
  try {
    for await (const entry of ex) {
      options.signal?.throwIfAborted();
      await applier.entry(entry.header, entry as unknown as Readable);
      entry.resume();
    }
    await feeding;
    await applier.finish();
  } catch (err) {
    ex.destroy();
    // The stream's own failure (a size limit, a decompression error) is the cause; the entry
    // loop then only sees a premature close.
    const cause = await feeding.then(() => undefined, (e: unknown) => e);
    throw toLayerError(cause instanceof PollenError ? cause : err);
  }
  return { diffId: `sha256:${hash.digest('hex')}`, entries: applier.entries, fileBytes: applier.fileBytes, warnings: applier.warnings };
}

function toLayerError(err: unknown): PollenError {
  if (err instanceof PollenError) return err;
  const e = err as Error;
  if (e?.message && /tar|header|Unexpected end/i.test(e.message) && !(e as NodeJS.ErrnoException).code) {
    return new PollenError('ERR_LAYER_INVALID', `layer is not a valid tar: ${e.message}`, {}, { cause: err });
  }
  return toPollenError(err);
}

class LayerApplier {
  entries = 0;
  fileBytes = 0;
  readonly warnings: ApplyWarning[] = [];
  private readonly written = new Set<string>();
  /** Directory mtimes, applied at the end (root-relative, symlink-free when recorded). */
  private readonly dirTimes: Array<{ rel: string; mtime: Date }> = [];
  /** Inodes this layer created: the only ones a hardlink entry's metadata may change in place. */
  private readonly ownInodes = new Set<bigint>();
  /** Parent directories already resolved and known to exist; cleared when links or dirs change. */
  private readonly parents = new Map<string, string>();
  private rootless = false;

  constructor(private readonly root: string) {}

  warn(entry: string, reason: string): void {
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push({ entry, reason });
  }

  async entry(h: Headers, body: Readable): Promise<void> {
    this.entries++;
    const { rel, clamped } = cleanEntryName(h.name);
    if (clamped) this.warn(h.name, 'name climbs out of the root: clamped inside it');
    if (rel === '') {
      if (h.type === 'directory') await this.metadata(this.root, h, 'directory');
      return;
    }
    const base = posix.basename(rel);
    const parentRel = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
    const parent = await this.parent(parentRel, h.name);
    if (base.startsWith(WHITEOUT_PREFIX)) return this.whiteout(parent, parentRel, base, h.name);
    const dest = posix.join(parent, base);
    const existing = await lstat(dest).catch(() => undefined);
    const type = h.type ?? 'file';
    if (type === 'directory') {
      if (existing && !existing.isDirectory()) await this.remove(dest);
      if (!existing || !existing.isDirectory()) await mkdir(dest, { mode: 0o700 });
      await this.metadata(dest, h, 'directory');
      const { mtime } = entryMeta(h);
      if (mtime) this.dirTimes.push({ rel: posix.relative(this.root, dest), mtime });
    } else if (type === 'file' || type === 'contiguous-file') {
      if (existing) await this.remove(dest);
      await this.writeFile(dest, h, body);
    } else if (type === 'symlink') {
      if (existing) await this.remove(dest);
      await symlink(h.linkname ?? '', dest);
      this.parents.clear();
      await this.own(dest);
      await this.metadata(dest, h, 'symlink');
    } else if (type === 'link') {
      await this.hardlink(dest, h, existing !== undefined);
    } else if (type === 'character-device' || type === 'block-device' || type === 'fifo') {
      if (existing) await this.remove(dest);
      try {
        await makeNode(dest, type, h.mode ?? 0o644, h.devmajor ?? 0, h.devminor ?? 0);
      } catch (err) {
        this.warn(h.name, `${type} not created: ${(err as Error).message.split('\n')[0]}`);
        return;
      }
      await this.own(dest);
      await this.metadata(dest, h, 'other');
    } else {
      this.warn(h.name, `entry type ${type} ignored`);
      return;
    }
    this.written.add(rel);
    await this.xattrs(dest, h);
  }

  /**
   * Directory mtimes, deepest last-written first. A later entry may have replaced the directory
   * (or one above it) with a symlink to anywhere: each path is resolved again inside the root, is
   * skipped unless that resolution meets no symlink and ends on a directory, and is set with
   * lutimes (which never follows the last component).
   */
  async finish(): Promise<void> {
    for (const { rel, mtime } of this.dirTimes.reverse()) {
      const parentRel = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
      const parent = await secureJoin(this.root, parentRel);
      if (parent.rel !== parentRel) continue; // a symlink now sits on the way
      const path = posix.join(parent.path, posix.basename(rel));
      const st = await lstat(path).catch(() => undefined);
      if (!st?.isDirectory()) continue;
      await lutimes(path, mtime, mtime);
    }
  }

  /** Records the inode at `path` as created by this layer. */
  private async own(path: string): Promise<void> {
    this.ownInodes.add((await lstat(path, { bigint: true })).ino);
  }

  private async parent(parentRel: string, entryName: string): Promise<string> {
    const cached = this.parents.get(parentRel);
    if (cached !== undefined) return cached;
    const r = await secureJoin(this.root, parentRel);
    if (r.clamped) this.warn(entryName, 'a symlink on the path climbs out of the root: resolved inside it');
    if (r.path !== this.root) {
      await mkdir(r.path, { recursive: true, mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
        throw new PollenError('ERR_LAYER_INVALID', `cannot create parent directory of ${entryName}: ${err.code ?? err.message}`, { entry: entryName }, { cause: err });
      });
    }
    this.parents.set(parentRel, r.path);
    return r.path;
  }

  private async remove(path: string): Promise<void> {
    await rm(path, { recursive: true, force: true });
    this.parents.clear();
  }

  private async whiteout(parent: string, parentRel: string, base: string, entryName: string): Promise<void> {
    if (base === OPAQUE_WHITEOUT) return this.opaque(parent, parentRel);
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') {
      this.warn(entryName, 'whiteout of an invalid name ignored');
      return;
    }
    await this.remove(posix.join(parent, name));
  }

  /** Removes what lower layers put under the directory; keeps what this layer wrote there. */
  private async opaque(dir: string, dirRel: string): Promise<void> {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const rel = dirRel ? `${dirRel}/${name}` : name;
      const path = posix.join(dir, name);
      if (!this.written.has(rel)) await this.remove(path);
      else if ((await lstat(path)).isDirectory()) await this.opaque(path, rel);
    }
  }

  private async writeFile(dest: string, h: Headers, body: Readable): Promise<void> {
    const fh = await open(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      // Chunks are gathered up to WRITE_BATCH_BYTES and written with one writev.
      let batch: Buffer[] = [];
      let batched = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        batch.push(chunk);
        batched += chunk.length;
        this.fileBytes += chunk.length;
        if (batched >= WRITE_BATCH_BYTES) {
          await writeAll(fh, batch);
          batch = [];
          batched = 0;
        }
      }
      if (batched > 0) await writeAll(fh, batch);
      this.ownInodes.add((await fh.stat({ bigint: true })).ino);
      const { uid, gid, mtime } = entryMeta(h);
      await this.owned(h.name, () => fh.chown(uid, gid));
      await fh.chmod((h.mode ?? 0o644) & 0o7777);
      if (mtime) await fh.utimes(mtime, mtime);
    } finally {
      await fh.close();
    }
  }

  private async hardlink(dest: string, h: Headers, exists: boolean): Promise<void> {
    const { rel, clamped } = cleanEntryName(h.linkname ?? '');
    if (clamped) this.warn(h.name, 'hardlink target climbs out of the root: resolved inside it');
    const tdir = await secureJoin(this.root, posix.dirname(rel) === '.' ? '' : posix.dirname(rel));
    if (tdir.clamped) this.warn(h.name, 'a symlink on the hardlink target path climbs out of the root: resolved inside it');
    const target = posix.join(tdir.path, posix.basename(rel));
    const st = rel === '' ? undefined : await lstat(target, { bigint: true }).catch(() => undefined);
    if (!st || st.isDirectory()) {
      throw new PollenError('ERR_LAYER_INVALID', `hardlink ${h.name} points to ${h.linkname ?? ''}, which is ${st ? 'a directory' : 'not in the layer or below it'}`, { entry: h.name, linkname: h.linkname });
    }
    if (target.startsWith(`${dest}/`)) {
      throw new PollenError('ERR_LAYER_INVALID', `hardlink ${h.name} would replace the directory holding its own target ${h.linkname ?? ''}`, { entry: h.name, linkname: h.linkname });
    }
    this.parents.clear();
    // The entry's xattrs are set on the linked inode. If this layer did not create it, it is the
    // parent snapshot's (cloned by `cp -al`) or shared further down: give this snapshot its own
    // copy first, as overlayfs copies a lower file up before changing it. (Other names of the old
    // inode in this snapshot keep the old one, as on overlayfs without its index feature.)
    if (entryXattrs(h).length > 0 && !this.ownInodes.has(st.ino)) await this.copyUp(target);
    if (target === dest) return;
    if (exists) await this.remove(dest);
    await link(target, dest);
  }

  /** Replaces `path` (not a directory) by a copy of itself: same content, mode, owner, times, xattrs. */
  private async copyUp(path: string): Promise<void> {
    const tmp = posix.join(posix.dirname(path), `.pollen-copy-up-${randomBytes(8).toString('hex')}`);
    try {
      await run('cp', ['-a', '--reflink=auto', '--', path, tmp]);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new PollenError('ERR_LAYER_INVALID', `cannot copy up ${path} before changing it: ${(err as Error).message.split('\n')[0]}`, { path }, { cause: err });
    }
    await this.own(path);
  }

  private async metadata(path: string, h: Headers, kind: 'directory' | 'symlink' | 'other'): Promise<void> {
    const { uid, gid, mtime } = entryMeta(h);
    await this.owned(h.name, () => lchown(path, uid, gid));
    if (kind !== 'symlink') await chmod(path, (h.mode ?? (kind === 'directory' ? 0o755 : 0o644)) & 0o7777);
    if (kind !== 'directory' && mtime) await lutimes(path, mtime, mtime);
  }

  /** chown; without root (EPERM) the owner is skipped and reported once, as rootless umoci does. */
  private async owned(entry: string, chown: () => Promise<void>): Promise<void> {
    if (this.rootless) return;
    try {
      await chown();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
      this.rootless = true;
      this.warn(entry, 'not allowed to change owners (not root): ownership of this layer is not applied');
    }
  }

  private async xattrs(path: string, h: Headers): Promise<void> {
    for (const { name, value } of entryXattrs(h)) {
      await setXattr(path, name, value).catch((err: Error) => this.warn(h.name, `xattr ${name} not set: ${err.message.split('\n')[0]}`));
    }
  }
}
