// The OCI runtime spec (config.json) of a bundle, made from an image config: the defaults that
// `runc spec` writes (mounts, namespaces, masked and read-only paths, capabilities), with the
// image's command, environment, working directory and user, terminal off, a writable root.
// Rich mode makes a real init (tini) pid 1: it reaps zombies and forwards signals to the command.
import type { ImageConfig } from '../oci/image.ts';
import type { ResolvedUser } from './user.ts';

export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Where the init binary is bind-mounted inside the container in rich mode. */
export const RICH_INIT_PATH = '/.pollen-init';

export interface RuntimeSpecOptions {
  /** Replaces the image's Cmd (Entrypoint is kept), as `docker run IMAGE ARGS...` does. */
  readonly args?: readonly string[];
  readonly hostname?: string;
  /** Host path of a static init binary (tini-static) for rich mode. */
  readonly richInit?: string;
  readonly prestartHooks?: readonly string[];
  readonly poststopHooks?: readonly string[];
}

const CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];

/**
 * A hook command runs as `sh -c CMD` with the container state on its stdin, which is then drained.
 * runc writes the state after starting the hook; a command that exits without reading it (`echo x
 * >> file`) closes the pipe first, runc catches the SIGPIPE it gets and forwards it, like every
 * signal it catches, to the container's init, which dies of it (exit 141, seen under load).
 */
export const HOOK_SCRIPT = 'sh -c "$1"; rc=$?; cat >/dev/null; exit $rc';
const hook = (cmd: string): { path: string; args: string[] } => ({ path: '/bin/sh', args: ['sh', '-c', HOOK_SCRIPT, 'pollen-hook', cmd] });

export function buildRuntimeSpec(image: ImageConfig, user: ResolvedUser, options: RuntimeSpecOptions = {}): Record<string, unknown> {
  const c = image.config;
  const command = [...(c.Entrypoint ?? []), ...(options.args ?? c.Cmd ?? [])];
  if (command.length === 0) command.push('sh');
  const args = options.richInit ? [RICH_INIT_PATH, '-g', '--', ...command] : command;
  const env = [...(c.Env ?? [])];
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(DEFAULT_PATH_ENV);
  const mounts: Record<string, unknown>[] = [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
  if (options.richInit) mounts.push({ destination: RICH_INIT_PATH, type: 'bind', source: options.richInit, options: ['bind', 'ro', 'nosuid', 'nodev'] });
  const hooks: Record<string, unknown> = {};
  if (options.prestartHooks?.length) hooks.prestart = options.prestartHooks.map(hook);
  if (options.poststopHooks?.length) hooks.poststop = options.poststopHooks.map(hook);
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: [...user.additionalGids] } : {}) },
      args,
      env,
      cwd: c.WorkingDir || '/',
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: false },
    hostname: options.hostname ?? 'pollen',
    mounts,
    ...(Object.keys(hooks).length ? { hooks } : {}),
    annotations: { ...(c.Labels ?? {}), ...(c.StopSignal ? { 'org.opencontainers.image.stopSignal': c.StopSignal } : {}) },
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}
