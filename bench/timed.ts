// Wall-clock milliseconds of an async step, for the benchmarks' side-by-side figures.
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}
