// The one adapter over `level` (classic-level): JSON values, `undefined` for a missing key, and
// prefix scans that are always drained or closed. Everything else in Pollen sees the Kv interface;
// unit tests use MemoryKv. test/unit/src/db.test.ts holds both to the same behaviour.
import { ClassicLevel } from 'classic-level';
import { PollenError } from './errors.ts';
import { ensurePrivateDir } from './store/private-dir.ts';

export type KvOp<T> = { type: 'put'; key: string; value: T } | { type: 'del'; key: string };

export interface Kv<T = unknown> {
  get(key: string): Promise<T | undefined>;
  put(key: string, value: T): Promise<void>;
  del(key: string): Promise<void>;
  batch(ops: ReadonlyArray<KvOp<T>>): Promise<void>;
  /** Entries whose key starts with `prefix`, in key order. */
  entries(prefix?: string): AsyncIterable<[string, T]>;
  /** A view whose keys are prefixed with `name` + '!'. */
  sub<U>(name: string): Kv<U>;
  close(): Promise<void>;
}

/** The first key after every key that starts with `prefix` (for range scans). */
function upperBound(prefix: string): string {
  return prefix + '\uffff';
}

class LevelKv<T> implements Kv<T> {
  constructor(
    private readonly db: ClassicLevel<string, string>,
    private readonly prefix: string,
    private readonly owner: boolean,
  ) {}

  async get(key: string): Promise<T | undefined> {
    const raw = await this.db.get(this.prefix + key);
    return raw === undefined ? undefined : (JSON.parse(raw) as T);
  }

  async put(key: string, value: T): Promise<void> {
    await this.db.put(this.prefix + key, JSON.stringify(value));
  }

  async del(key: string): Promise<void> {
    await this.db.del(this.prefix + key);
  }

  async batch(ops: ReadonlyArray<KvOp<T>>): Promise<void> {
    await this.db.batch(
      ops.map((op) =>
        op.type === 'put'
          ? { type: 'put' as const, key: this.prefix + op.key, value: JSON.stringify(op.value) }
          : { type: 'del' as const, key: this.prefix + op.key },
      ),
    );
  }

  async *entries(prefix = ''): AsyncIterable<[string, T]> {
    const full = this.prefix + prefix;
    const it = this.db.iterator({ gte: full, lt: upperBound(full) });
    try {
      for await (const [k, v] of it) yield [k.slice(this.prefix.length), JSON.parse(v) as T];
    } finally {
      await it.close();
    }
  }

  sub<U>(name: string): Kv<U> {
    return new LevelKv<U>(this.db, `${this.prefix}${name}!`, false);
  }

  async close(): Promise<void> {
    if (this.owner && this.db.status !== 'closed') await this.db.close();
  }
}

/** Opens (creating) the database at `path`; its directory is private to Pollen's user (0700). */
export async function openLevelKv<T = unknown>(path: string): Promise<Kv<T>> {
  // LevelDB creates its files 0644: the 0700 directory is what keeps them private.
  await ensurePrivateDir(path);
  const db = new ClassicLevel<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  try {
    await db.open();
  } catch (err) {
    // classic-level says only "Database failed to open"; the reason is in its cause.
    const cause = (err as Error & { cause?: Error & { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new PollenError('ERR_INVALID_CONFIG', `the database ${path} is in use by another Pollen process (its LOCK is held): each daemon needs a --data directory of its own`, { path });
    }
    throw new PollenError('ERR_INTERNAL', `could not open the database ${path}: ${cause?.message ?? (err as Error).message}`, { path });
  }
  return new LevelKv<T>(db, '', true);
}

export class MemoryKv<T = unknown> implements Kv<T> {
  constructor(
    private readonly map = new Map<string, string>(),
    private readonly prefix = '',
  ) {}

  async get(key: string): Promise<T | undefined> {
    const raw = this.map.get(this.prefix + key);
    return raw === undefined ? undefined : (JSON.parse(raw) as T);
  }

  async put(key: string, value: T): Promise<void> {
    this.map.set(this.prefix + key, JSON.stringify(value));
  }

  async del(key: string): Promise<void> {
    this.map.delete(this.prefix + key);
  }

  async batch(ops: ReadonlyArray<KvOp<T>>): Promise<void> {
    for (const op of ops) {
      if (op.type === 'put') await this.put(op.key, op.value);
      else await this.del(op.key);
    }
  }

  async *entries(prefix = ''): AsyncIterable<[string, T]> {
    const full = this.prefix + prefix;
    const keys = [...this.map.keys()].filter((k) => k.startsWith(full)).sort();
    for (const k of keys) {
      const raw = this.map.get(k);
      if (raw !== undefined) yield [k.slice(this.prefix.length), JSON.parse(raw) as T];
    }
  }

  sub<U>(name: string): Kv<U> {
    return new MemoryKv<U>(this.map, `${this.prefix}${name}!`);
  }

  async close(): Promise<void> {}
}
