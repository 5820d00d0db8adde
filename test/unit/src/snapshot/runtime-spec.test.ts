import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseImageConfig } from '../../../../src/oci/image.ts';
import { buildRuntimeSpec, DEFAULT_PATH_ENV, HOOK_SCRIPT, RICH_INIT_PATH } from '../../../../src/snapshot/runtime-spec.ts';

const image = (config: Record<string, unknown>) => parseImageConfig(Buffer.from(JSON.stringify({ config, rootfs: { diff_ids: [] } })));
const root = { uid: 0, gid: 0, additionalGids: [] };
type Spec = { process: { args: string[]; env: string[]; cwd: string; terminal: boolean; user: unknown }; mounts: Array<{ destination: string; source: string }>; hooks?: Record<string, Array<{ path: string; args: string[] }>>; root: { readonly: boolean } };

describe('buildRuntimeSpec', () => {
  it('runs Entrypoint + Cmd with the image Env and WorkingDir, terminal off', () => {
    const s = buildRuntimeSpec(image({ Entrypoint: ['/init'], Cmd: ['--serve'], Env: ['PATH=/x', 'A=1'], WorkingDir: '/srv' }), { uid: 5, gid: 6, additionalGids: [7] }) as Spec;
    expect(s.process.args).toEqual(['/init', '--serve']);
    expect(s.process.env).toEqual(['PATH=/x', 'A=1']);
    expect(s.process.cwd).toBe('/srv');
    expect(s.process.terminal).toBe(false);
    expect(s.process.user).toEqual({ uid: 5, gid: 6, additionalGids: [7] });
    expect(s.root.readonly).toBe(false);
  });

  it('given args replace Cmd but keep Entrypoint; PATH defaults when the image has none', () => {
    const s = buildRuntimeSpec(image({ Entrypoint: ['/init'], Cmd: ['--serve'] }), root, { args: ['--check'] }) as Spec;
    expect(s.process.args).toEqual(['/init', '--check']);
    expect(s.process.env).toEqual([DEFAULT_PATH_ENV]);
    expect(s.process.cwd).toBe('/');
  });

  it('the runc spec default mounts are there', () => {
    const s = buildRuntimeSpec(image({}), root) as Spec;
    expect(s.mounts.map((m) => m.destination)).toEqual(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup']);
  });

  it('rich mode puts the init first and bind-mounts it; hooks run through sh -c', () => {
    const s = buildRuntimeSpec(image({ Cmd: ['app'] }), root, { richInit: '/usr/bin/tini-static', prestartHooks: ['echo pre'], poststopHooks: ['echo post'] }) as Spec;
    expect(s.process.args).toEqual([RICH_INIT_PATH, '-g', '--', 'app']);
    expect(s.mounts.at(-1)).toMatchObject({ destination: RICH_INIT_PATH, source: '/usr/bin/tini-static' });
    expect(s.hooks).toEqual({ prestart: [{ path: '/bin/sh', args: ['sh', '-c', HOOK_SCRIPT, 'pollen-hook', 'echo pre'] }], poststop: [{ path: '/bin/sh', args: ['sh', '-c', HOOK_SCRIPT, 'pollen-hook', 'echo post'] }] });
  });

  it('a hook keeps its command exit status, passes the state on stdin and holds the pipe open until it is all written', () => {
    // The writer (runc's role) sends more than a pipe buffer; it must not die of SIGPIPE (141).
    const run = (cmd: string) => spawnSync('bash', ['-c', 'head -c 200000 /dev/zero | /bin/sh -c "$1" pollen-hook "$2"; echo "${PIPESTATUS[*]}"', 'x', HOOK_SCRIPT, cmd]).stdout.toString().trim();
    expect(run('exit 3')).toBe('0 3');
    expect(run('echo pre >/dev/null')).toBe('0 0');
    expect(run('head -c 4 | wc -c')).toBe('4\n0 0');
  });
});
