// deploy/systemd: the units as shipped are checked by systemd itself (`systemd-analyze verify`, with
// ExecStart pointed at a stub, since verify wants the binary to exist) and carry the hardening the
// operations guide promises; `systemd-analyze security` rates their exposure.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileP, requireTool } from '../../helpers/tools.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');
const SHIPPED_BIN = '/usr/bin/pollen';

/** `Key=value` lines of a unit, by key (a key may repeat). */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

describe.each([
  ['pollen-peer.service', 'peer', '/etc/pollen/peer.yaml'],
  ['pollen-supernode.service', 'supernode', '/etc/pollen/supernode.yaml'],
])('deploy/systemd/%s', (unit, command, configFile) => {
  let dir: string;
  let text: string;

  beforeAll(async () => {
    text = await readFile(join(ROOT, 'deploy/systemd', unit), 'utf8');
    dir = await mkdtemp(join(tmpdir(), 'pollen-systemd-'));
    await writeFile(join(dir, 'pollen'), '#!/bin/sh\nexit 0\n');
    await chmod(join(dir, 'pollen'), 0o755);
    await writeFile(join(dir, unit), text.replaceAll(SHIPPED_BIN, join(dir, 'pollen')));
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs the daemon from its config file', () => {
    expect(directives(text).get('ExecStart')).toEqual([`${SHIPPED_BIN} ${command} --config ${configFile}`]);
  });

  it('is accepted by systemd-analyze verify without a single warning', async () => {
    const analyze = requireTool('systemd-analyze', 'systemd');
    const { stdout, stderr } = await execFileP(analyze, ['verify', join(dir, unit)], { cwd: dir });
    expect(stdout + stderr).toBe('');
  });

  it('notices a misspelt directive (so the check above can fail)', async () => {
    const analyze = requireTool('systemd-analyze', 'systemd');
    const bad = join(dir, `bad-${unit}`);
    await writeFile(bad, (await readFile(join(dir, unit), 'utf8')).replace('ProtectSystem=', 'ProtectSytem='));
    const { stderr } = await execFileP(analyze, ['verify', bad]);
    expect(stderr).toMatch(/Unknown key 'ProtectSytem'/);
  });

  it('runs unprivileged and confined', () => {
    const d = directives(text);
    const one = (k: string) => d.get(k)?.at(-1);
    expect(one('DynamicUser')).toBe('yes');
    expect(one('User')).toBe('pollen');
    expect(one('StateDirectory')).toBe('pollen');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ProtectHome')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('AmbientCapabilities')).toBe('');
    expect(one('RestrictAddressFamilies')?.split(/\s+/).sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_UNIX']);
    // Secrets come from a root-only environment file, not the world-readable YAML.
    expect(one('EnvironmentFile')).toBe('-/etc/pollen/pollen.env');
  });

  it('has an exposure level of at most 2.0 by systemd-analyze security', async () => {
    const analyze = requireTool('systemd-analyze', 'systemd');
    const { stdout } = await execFileP(analyze, ['security', '--offline=true', '--no-pager', join(dir, unit)], { maxBuffer: 4 << 20 });
    const m = /Overall exposure level for \S+: (\d+\.\d)/.exec(stdout);
    expect(m, stdout.slice(-500)).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(2.0);
  });
});
