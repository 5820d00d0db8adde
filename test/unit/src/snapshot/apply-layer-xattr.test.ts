// Binary xattr values (file capabilities) survive the unpack byte for byte; PAX owners above the
// ustar limit are applied. The layer is made by GNU tar from a real file carrying the xattrs.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLayer } from '../../../../src/snapshot/apply-layer.ts';
import { requireTool } from '../../../helpers/tools.ts';

const run = promisify(execFile);
// vfs_cap_data v2: cap_net_raw in permitted, effective flag set.
const CAP_NET_RAW = '0x0100000200200000000000000000000000000000';

describe('xattrs and PAX owners', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-xattr-'));
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'ping'), 'binary');
    const setfattr = requireTool('setfattr', 'attr');
    await run(setfattr, ['-n', 'security.capability', '-v', CAP_NET_RAW, join(src, 'ping')]);
    await run(setfattr, ['-n', 'user.bin', '-v', '0x00ff80c3', join(src, 'ping')]);
    await writeFile(join(src, 'big-owner'), 'x');
    await run('chown', ['3000000:3000001', join(src, 'big-owner')]);
    await run(requireTool('tar', 'tar'), ['--xattrs', "--xattrs-include=*", '--format=posix', '-cf', join(dir, 'layer.tar'), '-C', src, 'ping', 'big-owner']);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('keeps binary xattr values exactly and applies PAX uid/gid', async () => {
    const root = join(dir, 'rootfs');
    await mkdir(root);
    const r = await applyLayer(root, createReadStream(join(dir, 'layer.tar')));
    expect(r.warnings).toEqual([]);
    const { stdout } = await run(requireTool('getfattr', 'attr'), ['-d', '-m', '-', '-e', 'hex', '--absolute-names', join(root, 'ping')]);
    expect(stdout).toContain(`security.capability=${CAP_NET_RAW}`);
    expect(stdout).toContain('user.bin=0x00ff80c3');
    const st = await lstat(join(root, 'big-owner'));
    expect([st.uid, st.gid]).toEqual([3000000, 3000001]);
  });
});
