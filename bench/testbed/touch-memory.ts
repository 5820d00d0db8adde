// Writing into memory a host has used before, as a host that has run a while does.
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';

const CHUNK_BYTES = 8 << 20;

/**
 * Memory the kernel has not handed out since this VM booted costs ~2 CPU s of system time per GiB
 * the first time a file's page cache takes it (`dd` of 256 MiB to a new file: 0.51 s; right after
 * 1 GiB was written and deleted: 0.04 s). A long-running host's memory has all been touched; a fresh
 * VM's has not, and which of bench:peer-cpu's rows found touched pages depended on their order: in a
 * perf record of one run the mirror (first), its skopeo and curl paid 8-12 samples in that copy
 * (`copy_folio_from_iter_atomic`), every later daemon and skopeo 220-300 (~2 CPU s per GiB). So
 * before each measured pull as many bytes as it will keep are written to a file in `dir` and deleted,
 * outside what is measured: every row then writes into touched memory, as on a host that has run a
 * while (bench:peer-cpu before each pull, bench fanout before each system's pulls). It holds only
 * for a measurement that starts soon after: this VM also hands freed memory back to its host (free
 * page reporting, ~45 MB a second when idle), and only the last 1.5-3.5 GiB freed stay warm; past
 * them a growing page cache pays ~1.9 CPU s per GiB again, whoever writes (bench/README.md,
 * fortieth session).
 */
export async function touchMemory(dir: string, bytes: number): Promise<void> {
  const path = join(dir, 'touched');
  const chunk = Buffer.alloc(CHUNK_BYTES);
  const fh = await open(path, 'w');
  try {
    for (let n = 0; n < bytes; n += chunk.length) await fh.write(chunk);
  } finally {
    await fh.close();
  }
  await rm(path);
}
