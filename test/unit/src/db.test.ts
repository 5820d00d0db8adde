// The database adapter: one daemon per data directory, and a refusal that says so. LevelDB locks
// its directory; a second daemon started on the same --data got only classic-level's "Database
// failed to open".
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLevelKv, type Kv } from '../../../src/db.ts';
import { isPollenError } from '../../../src/errors.ts';

describe('openLevelKv', () => {
  const open: Kv[] = [];
  let dir: string | undefined;
  afterEach(async () => {
    for (const kv of open.splice(0)) await kv.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses a database another daemon holds, naming it and why, and leaves the holder working', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pollen-db-'));
    const path = join(dir, 'db');
    const first = await openLevelKv<number>(path);
    open.push(first);
    await first.put('k', 1);
    const err = await openLevelKv(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isPollenError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'ERR_INVALID_CONFIG' });
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toMatch(/in use by another Pollen process/);
    expect(await first.get('k')).toBe(1);
  });
});
