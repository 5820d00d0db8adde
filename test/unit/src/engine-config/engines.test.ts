import { describe, expect, it } from 'vitest';
import { planEngineConfig } from '../../../../src/engine-config/engines.ts';

describe('pollen configure plans', () => {
  it('writes one hosts.toml per registry for containerd, Docker Hub under docker.io', () => {
    const plan = planEngineConfig('containerd', { mirror: 'http://127.0.0.1:65001', registries: ['R.example:5000', 'index.docker.io', 'r.example:5000'], configDir: '/c' });
    expect(plan.files.map((f) => f.path)).toEqual(['/c/r.example:5000/hosts.toml', '/c/docker.io/hosts.toml']);
    expect(plan.files[1]!.render(undefined)).toContain('server = "https://registry-1.docker.io"');
  });

  it('uses each engine’s usual directory by default', () => {
    expect(planEngineConfig('docker', { mirror: 'http://127.0.0.1:65001', registries: [] }).files[0]!.path).toBe('/etc/docker/daemon.json');
    expect(planEngineConfig('podman', { mirror: 'http://127.0.0.1:65001', registries: ['r.example'] }).files[0]!.path).toBe('/etc/containers/registries.conf');
  });

  it('refuses a mirror that is not a bare http(s) origin, and a malformed registry', () => {
    for (const mirror of ['127.0.0.1:65001', 'ftp://x', 'http://x/v2', 'http://u:p@x', 'http://x?a=1']) {
      expect(() => planEngineConfig('containerd', { mirror, registries: ['r.example'] }), mirror).toThrow(/invalid --mirror/);
    }
    for (const registry of ['r.example/ns', 'https://r.example', 'a b', '"q"', '']) {
      expect(() => planEngineConfig('containerd', { mirror: 'http://127.0.0.1:65001', registries: [registry] }), registry).toThrow(/invalid --registry/);
    }
  });

  it('needs a registry for containerd and exactly one for podman, which names none to its mirror', () => {
    expect(() => planEngineConfig('containerd', { mirror: 'http://127.0.0.1:65001', registries: [] })).toThrow(/at least one --registry/);
    expect(() => planEngineConfig('podman', { mirror: 'http://127.0.0.1:65001', registries: ['a.example', 'b.example'] })).toThrow(/exactly one --registry/);
  });
});
