// glibc's malloc tuned for a daemon whose bytes pass through short-lived buffers: every socket read
// lands in a fresh 64 KiB buffer from malloc, freed only when V8 collects it, so the heap keeps
// touching pages the kernel has to fault in. With `glibc.malloc.hugetlb=1` malloc asks for
// transparent huge pages on its heap (the kernel's default 'madvise' mode grants them only on
// request): a fault then maps 2 MiB instead of 4 KiB. bench:peer-cpu, 256 MiB, one run each way on
// a VM where a fault costs 11.5 us: page faults per GiB 59k -> 10k on the mirror path, 48-61k ->
// 9-31k on the seed path; CPU s per GiB mirror 6.36 -> 4.88, seed supernode 12.60-14.16 ->
// 11.72-12.08 and peer 13.68-14.44 -> 12.04-12.52, p2p downloader 7.96-9.88 -> 7.68-8.80; peak RSS
// on the fan-out bed unchanged (98-133 MiB). A tunable is read when the process starts, so it goes
// in the environment of whatever launches the daemon (the systemd units, the Kubernetes manifests,
// scripts/start.sh, the tests' and benches' launchers); other C libraries ignore it.
export const MALLOC_TUNABLES = 'glibc.malloc.hugetlb=1';

/** `env` with MALLOC_TUNABLES added to GLIBC_TUNABLES, unless that already sets glibc.malloc.hugetlb. */
export function withMallocTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const current = env.GLIBC_TUNABLES ?? '';
  if (/(^|:)glibc\.malloc\.hugetlb=/.test(current)) return env;
  return { ...env, GLIBC_TUNABLES: current === '' ? MALLOC_TUNABLES : `${current}:${MALLOC_TUNABLES}` };
}

/** Whether a process started with `env` has malloc on huge pages (the daemons log it at start, for operators). */
export function mallocHugepages(env: NodeJS.ProcessEnv): boolean {
  return /(^|:)glibc\.malloc\.hugetlb=[12]/.test(env.GLIBC_TUNABLES ?? '');
}
