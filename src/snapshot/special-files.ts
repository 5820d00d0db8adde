// What Node has no call for: device nodes and fifos (mknod(2)) and extended attributes
// (lsetxattr(2)). They go through small commands: `mknod` (coreutils) and `setfattr` (Debian
// package attr). Device nodes need CAP_MKNOD (root); when a command is missing or refused the
// applier records the entry as skipped instead of failing the layer.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type SpecialKind = 'character-device' | 'block-device' | 'fifo';

/** Creates a device node or fifo (not following anything: the path's last component must not exist). */
export async function makeNode(path: string, kind: SpecialKind, mode: number, major = 0, minor = 0): Promise<void> {
  const m = (mode & 0o7777).toString(8);
  const rest = kind === 'fifo' ? ['p'] : [kind === 'character-device' ? 'c' : 'b', String(major), String(minor)];
  await run('mknod', ['-m', m, '--', path, ...rest]);
}

/** Sets one extended attribute on the path itself (never a symlink's target). */
export async function setXattr(path: string, name: string, value: Buffer): Promise<void> {
  await run('setfattr', ['-h', '-n', name, '-v', `0x${value.toString('hex')}`, '--', path]);
}
