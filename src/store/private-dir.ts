// Pollen's data is private to its user, as containerd keeps its content store and snapshot roots:
// directories 0700 whatever the umask and whether they existed before (a directory created by an
// older version, or under a permissive umask, is tightened when Pollen opens it), files 0600.
import { chmod, mkdir, stat } from 'node:fs/promises';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `path` (and missing parents, each 0700) or tightens an existing one to 0700. Resolves
 * whether the directory was private already, so a caller can repair what it holds only when needed.
 */
export async function ensurePrivateDir(path: string): Promise<{ wasPrivate: boolean }> {
  // mkdir's mode is filtered by the umask and ignored for directories that exist: chmod always.
  const created = await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  const before = (await stat(path)).mode & 0o777;
  if (before !== PRIVATE_DIR_MODE) await chmod(path, PRIVATE_DIR_MODE);
  return { wasPrivate: created === undefined && (before & 0o077) === 0 };
}

/** Tightens a file to owner-only if group or others may read or write it. */
export async function ensurePrivateFile(path: string, mode: number): Promise<void> {
  if ((mode & 0o077) !== 0) await chmod(path, mode & 0o700);
}
