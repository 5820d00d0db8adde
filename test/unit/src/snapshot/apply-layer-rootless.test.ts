// Without root, owners cannot be applied: the layer still unpacks, the skip is reported once.
// Runs the applier as `nobody` through setpriv (util-linux).
import { execFile } from 'node:child_process';
import { chmod, cp, lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTar } from '../../../helpers/images.ts';
import { requireTool } from '../../../helpers/tools.ts';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../../..');
const NOBODY = 65534;

describe('applyLayer without root', () => {
  let dir: string;
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('unpacks the layer with the caller as owner and reports the skipped ownership once', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-rootless-'));
    await chmod(dir, 0o777);
    await writeFile(join(dir, 'layer.tar'), await buildTar([
      { type: 'file', name: 'a', content: 'a', uid: 1234, gid: 1234 },
      { type: 'file', name: 'b', content: 'b', uid: 1234, gid: 1234, mode: 0o640 },
    ]));
    await mkdir(join(dir, 'root'));
    await chmod(join(dir, 'root'), 0o777);
    // `nobody` may not be able to reach the checkout (CI may clone into a 0700 directory): it runs
    // a copy of the sources and dependencies in the world-readable test directory instead.
    const copy = join(dir, 'repo');
    for (const part of ['package.json', 'tsconfig.json', 'src', 'node_modules']) await cp(join(REPO, part), join(copy, part), { recursive: true });
    const script = join(dir, 'apply.mjs');
    await writeFile(script, [
      `import { register } from ${JSON.stringify(join(copy, 'node_modules/tsx/dist/esm/api/index.mjs'))};`,
      'register();',
      `const { applyLayer } = await import(${JSON.stringify(join(copy, 'src/snapshot/apply-layer.ts'))});`,
      `const { createReadStream } = await import('node:fs');`,
      `const r = await applyLayer(${JSON.stringify(join(dir, 'root'))}, createReadStream(${JSON.stringify(join(dir, 'layer.tar'))}));`,
      'console.log(JSON.stringify(r.warnings));',
    ].join('\n'));
    const { stdout } = await run(requireTool('setpriv', 'util-linux'), [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, script], { cwd: dir });
    const warnings = JSON.parse(stdout) as { entry: string; reason: string }[];
    expect(warnings).toEqual([{ entry: 'a', reason: expect.stringContaining('not root') }]);
    const b = await lstat(join(dir, 'root', 'b'));
    expect([b.uid, b.mode & 0o777]).toEqual([NOBODY, 0o640]);
  });
});
