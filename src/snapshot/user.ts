// The image config's User ("name", "uid", "name:group", "uid:gid", ...) resolved to numeric ids
// through the rootfs' own /etc/passwd and /etc/group, as runc's libcontainer/user does. Both files
// are found inside the rootfs (secure-join), never on the host.
import { readFile } from 'node:fs/promises';
import { PollenError } from '../errors.ts';
import { secureJoin } from './secure-join.ts';

export interface ResolvedUser {
  readonly uid: number;
  readonly gid: number;
  readonly additionalGids: readonly number[];
}

const MAX_ID_FILE_BYTES = 16 * 1024 * 1024;

async function readTable(rootfs: string, file: string): Promise<string[][]> {
  const { path } = await secureJoin(rootfs, file);
  const text = await readFile(path, 'utf8').catch(() => '');
  return text
    .slice(0, MAX_ID_FILE_BYTES)
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

const isNumeric = (s: string): boolean => /^\d+$/.test(s);

export async function resolveUser(rootfs: string, user: string | undefined): Promise<ResolvedUser> {
  const spec = (user ?? '').trim();
  if (spec === '') return { uid: 0, gid: 0, additionalGids: [] };
  const [u = '', g] = spec.split(':', 2);
  const passwd = await readTable(rootfs, 'etc/passwd');
  const groups = await readTable(rootfs, 'etc/group');
  const entry = passwd.find((p) => (isNumeric(u) ? p[2] === u : p[0] === u));
  let uid: number;
  let gid: number;
  if (entry) {
    uid = Number(entry[2]);
    gid = Number(entry[3] ?? 0);
  } else if (isNumeric(u)) {
    uid = Number(u);
    gid = 0;
  } else {
    throw new PollenError('ERR_INVALID_CONFIG', `user ${JSON.stringify(u)} of the image config is not in the image's /etc/passwd`, { user: spec });
  }
  if (g !== undefined && g !== '') {
    const ge = groups.find((x) => (isNumeric(g) ? x[2] === g : x[0] === g));
    if (ge) gid = Number(ge[2]);
    else if (isNumeric(g)) gid = Number(g);
    else throw new PollenError('ERR_INVALID_CONFIG', `group ${JSON.stringify(g)} of the image config is not in the image's /etc/group`, { user: spec });
  }
  // Supplementary groups: those listing the user by name (only when the group was not forced).
  const name = entry?.[0];
  const additionalGids =
    g === undefined && name
      ? groups.filter((x) => (x[3] ?? '').split(',').includes(name)).map((x) => Number(x[2])).filter((n) => Number.isSafeInteger(n) && n !== gid)
      : [];
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid)) throw new PollenError('ERR_INVALID_CONFIG', `user ${JSON.stringify(spec)} resolves to a non-numeric id`);
  return { uid, gid, additionalGids: [...new Set(additionalGids)] };
}
