import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveUser } from '../../../../src/snapshot/user.ts';

describe('resolveUser', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pollen-user-'));
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n');
    await writeFile(join(root, 'etc/group'), 'root:x:0:\napp:x:1001:\nstaff:x:50:app,other\nwheel:x:10:root\n');
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('defaults to root', async () => expect(await resolveUser(root, '')).toEqual({ uid: 0, gid: 0, additionalGids: [] }));
  it('resolves a name through /etc/passwd, with supplementary groups from /etc/group', async () =>
    expect(await resolveUser(root, 'app')).toEqual({ uid: 1000, gid: 1001, additionalGids: [50] }));
  it('resolves name:group and uid:gid', async () => {
    expect(await resolveUser(root, 'app:staff')).toEqual({ uid: 1000, gid: 50, additionalGids: [] });
    expect(await resolveUser(root, '1234:5678')).toEqual({ uid: 1234, gid: 5678, additionalGids: [] });
    expect(await resolveUser(root, '1000')).toMatchObject({ uid: 1000, gid: 1001 });
  });
  it('refuses names the image does not know', async () => {
    await expect(resolveUser(root, 'nobody')).rejects.toThrow(/not in the image's \/etc\/passwd/);
    await expect(resolveUser(root, 'app:nogroup')).rejects.toThrow(/not in the image's \/etc\/group/);
  });
});
