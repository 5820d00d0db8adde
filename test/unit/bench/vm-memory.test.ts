import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { holdFreedMemory, orderAboveBuddy, parseVmMemory } from '../../../bench/testbed/vm-memory.ts';

const BUDDYINFO = [
  'Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3 ',
  'Node 0, zone    DMA32     17     14     11      9      6      5      2      5      4      3    750 ',
  'Node 0, zone   Normal  27726  29615  22448  13154   6789   4619   2452   2214   1302    841   3186 ',
  '',
].join('\n');

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function files(order: string | undefined): Promise<{ order: string; buddyinfo: string; state: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pollen-vm-memory-'));
  dirs.push(dir);
  const paths = { order: join(dir, 'page_reporting_order'), buddyinfo: join(dir, 'buddyinfo'), state: join(dir, 'hold.json') };
  if (order !== undefined) await writeFile(paths.order, order);
  await writeFile(paths.buddyinfo, BUDDYINFO);
  return paths;
}

/** A pid no process has (the kernel's pid_max is at most 2^22). */
const DEAD_PID = 2 ** 22 + 1;

describe("holding a VM's freed memory (free page reporting)", () => {
  it('--vm-memory is hold (the default) or as-is', () => {
    expect(parseVmMemory(undefined)).toBe('hold');
    expect(parseVmMemory('as-is')).toBe('as-is');
    expect(() => parseVmMemory('off')).toThrow(/--vm-memory takes 'hold' or 'as-is', got "off"/);
  });

  it("the order above the buddy allocator's largest is its count of orders", () => {
    expect(orderAboveBuddy(BUDDYINFO)).toBe(11);
    expect(() => orderAboveBuddy('')).toThrow(/buddyinfo/);
  });

  it('reports nothing while held, and restores the order it found on release', async () => {
    const paths = await files('9\n');
    const hold = holdFreedMemory(paths);
    expect(hold.state).toBe('held');
    expect(await readFile(paths.order, 'utf8')).toBe('11');
    await hold.release();
    expect(await readFile(paths.order, 'utf8')).toBe('9');
    expect(existsSync(paths.state)).toBe(false);
    await hold.release();
    expect(await readFile(paths.order, 'utf8')).toBe('9');
  });

  it('the last of two holds restores, whichever released first', async () => {
    const paths = await files('9\n');
    const first = holdFreedMemory(paths);
    const second = holdFreedMemory(paths);
    expect(second.state).toBe('held');
    await first.release();
    expect(await readFile(paths.order, 'utf8')).toBe('11');
    await second.release();
    expect(await readFile(paths.order, 'utf8')).toBe('9');
  });

  it("a hold after a killed holder takes its place and restores the kernel's value", async () => {
    const paths = await files('11\n');
    await writeFile(paths.state, JSON.stringify({ order: '9', holders: [DEAD_PID] }));
    const hold = holdFreedMemory(paths);
    expect(hold.state).toBe('held');
    await hold.release();
    expect(await readFile(paths.order, 'utf8')).toBe('9');
  });

  it('an order set by hand, with no record of its own value, is left as it was', async () => {
    const paths = await files('11\n');
    const hold = holdFreedMemory(paths);
    expect(hold.state).toBe('held');
    await hold.release();
    expect(await readFile(paths.order, 'utf8')).toBe('11\n');
  });

  it('a kernel without page reporting, or without a reporting device (-1), has nothing to hold', async () => {
    expect(holdFreedMemory(await files(undefined)).state).toBe('no page reporting');
    const none = await files('-1\n');
    expect(holdFreedMemory(none).state).toBe('no page reporting');
    expect(await readFile(none.order, 'utf8')).toBe('-1\n');
  });

  it('a record it cannot write gives the kernel its value back at once, and says why it did not hold', async () => {
    const paths = await files('9\n');
    const hold = holdFreedMemory({ ...paths, state: join(paths.state, 'no-such-dir', 'hold.json') });
    expect(hold.state).toMatch(/^not held: cannot write .*hold\.json \(ENOENT\)$/);
    expect(await readFile(paths.order, 'utf8')).toBe('9');
  });

  it('a parameter it cannot write is reported as not held, with the cause', async () => {
    const { buddyinfo, state } = await files(undefined);
    // Readable, and refused to every writer, root included.
    const hold = holdFreedMemory({ order: '/proc/self/stat', buddyinfo, state });
    expect(hold.state).toMatch(/^not held: cannot write \/proc\/self\/stat \(E[A-Z]+\)$/);
    expect(existsSync(state)).toBe(false);
  });
});
