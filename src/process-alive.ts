// Whether a process still runs: for state left behind by a process that may have been killed (a
// snapshot's unpacking directory, a benchmark's hold on the VM's memory).

/** Whether `pid` names a live process (one of another user's counts: EPERM means it exists). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
