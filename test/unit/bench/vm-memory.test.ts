import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { holdFreedMemory, orderAboveBuddy } from '../../../bench/testbed/vm-memory.ts';

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

async function files(order: string | undefined): Promise<{ order: string; buddyinfo: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pollen-vm-memory-'));
  dirs.push(dir);
  const paths = { order: join(dir, 'page_reporting_order'), buddyinfo: join(dir, 'buddyinfo') };
  if (order !== undefined) await writeFile(paths.order, order);
  await writeFile(paths.buddyinfo, BUDDYINFO);
  return paths;
}

describe('holding a VM\'s freed memory (free page reporting)', () => {
  it('the order above the buddy allocator\'s largest is its count of orders', () => {
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
    await hold.release();
    expect(await readFile(paths.order, 'utf8')).toBe('9');
  });

  it('a second hold while one is held leaves the restoring to the first', async () => {
    const paths = await files('9\n');
    const first = holdFreedMemory(paths);
    const second = holdFreedMemory(paths);
    expect(second.state).toBe('held');
    await second.release();
    expect(await readFile(paths.order, 'utf8')).toBe('11');
    await first.release();
    expect(await readFile(paths.order, 'utf8')).toBe('9');
  });

  it('a kernel without page reporting has nothing to hold', async () => {
    const paths = await files(undefined);
    const hold = holdFreedMemory(paths);
    expect(hold.state).toBe('no page reporting');
    await hold.release();
  });

  it('a parameter it cannot write is an error that names it', async () => {
    const { buddyinfo } = await files(undefined);
    // Readable, and refused to every writer, root included.
    expect(() => holdFreedMemory({ order: '/proc/self/stat', buddyinfo })).toThrow(/cannot hold this VM's freed memory \(\/proc\/self\/stat\).*--vm-memory as-is/);
  });
});
