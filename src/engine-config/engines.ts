// `pollen configure <engine>`: which files an engine's mirror configuration lives in, how each is
// rendered from its current content, and what the operator must still do. Pure: the CLI reads and
// writes the files.
import { join } from 'node:path';
import { PollenError } from '../errors.ts';
import { CONTAINERD_CONFIG_DIR, containerdHostDir, containerdHostsToml } from './containerd.ts';
import { checkDockerRegistries, DOCKER_CONFIG_DIR, dockerDaemonJson } from './docker.ts';
import { checkRegistryHost, parseMirror } from './mirror.ts';
import { CONTAINERS_CONFIG_DIR, registriesConf } from './podman.ts';

export const ENGINES = ['containerd', 'docker', 'podman'] as const;
export type Engine = (typeof ENGINES)[number];

export const DEFAULT_CONFIG_DIRS: Readonly<Record<Engine, string>> = {
  containerd: CONTAINERD_CONFIG_DIR,
  docker: DOCKER_CONFIG_DIR,
  podman: CONTAINERS_CONFIG_DIR,
};

export interface EngineFile {
  readonly path: string;
  /** The file's new content from its current one (undefined: no such file). */
  render(existing: string | undefined): string;
}

export interface EnginePlan {
  readonly files: readonly EngineFile[];
  /** What the operator must know or do for the configuration to take effect. */
  readonly notes: readonly string[];
}

export function planEngineConfig(engine: Engine, request: { mirror: string; registries: readonly string[]; configDir?: string | undefined }): EnginePlan {
  const mirror = parseMirror(request.mirror);
  const registries = [...new Set(request.registries.map(checkRegistryHost))];
  const dir = request.configDir ?? DEFAULT_CONFIG_DIRS[engine];
  switch (engine) {
    case 'containerd': {
      if (registries.length === 0) throw new PollenError('ERR_INVALID_CONFIG', 'containerd: name at least one --registry HOST', { key: 'registry' });
      return {
        files: registries.map((r) => {
          const path = join(dir, containerdHostDir(r), 'hosts.toml');
          return { path, render: (existing) => containerdHostsToml(existing, path, r, mirror) };
        }),
        notes: [`containerd reads ${dir} at each pull when its CRI registry config_path (or \`ctr --hosts-dir\`) names it; the peer needs registry: HOST=URL for each registry`],
      };
    }
    case 'docker': {
      checkDockerRegistries(registries);
      const path = join(dir, 'daemon.json');
      return {
        files: [{ path, render: (existing) => dockerDaemonJson(existing, path, mirror) }],
        notes: ['apply with `systemctl reload docker`; dockerd mirrors Docker Hub only, so the peer needs upstream: https://registry-1.docker.io'],
      };
    }
    case 'podman': {
      if (registries.length !== 1) {
        throw new PollenError(
          'ERR_INVALID_CONFIG',
          'podman: name exactly one --registry HOST: podman, CRI-O and skopeo do not tell a mirror which registry they want, so a peer serves them one registry, its upstream',
          { key: 'registry' },
        );
      }
      const path = join(dir, 'registries.conf');
      return {
        files: [{ path, render: (existing) => registriesConf(existing, path, registries, mirror) }],
        notes: [`podman, CRI-O, skopeo and buildah read ${path} at each pull; the peer needs upstream: https://${registries[0]}`],
      };
    }
  }
}
