// An in-process P2P swarm for tests and benchmarks: a real Supernode and peers made of the real
// P2P parts (agent, uploader, downloader over FsContentStore and level), driven through the
// BlobDownloader seam without the mirror in front.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { steadyClock } from '../../src/clock.ts';
import { openLevelKv, type Kv } from '../../src/db.ts';
import type { Digest } from '../../src/digest.ts';
import { FsContentStore } from '../../src/fs-content-store.ts';
import { P2pAgent } from '../../peer/p2p/p2p-agent.ts';
import { P2pDownloader } from '../../peer/p2p/p2p-downloader.ts';
import type { PersistedPieces, TransferTimings } from '../../peer/p2p/transfer-seams.ts';
import { UpstreamDownloader } from '../../peer/mirror/upstream-downloader.ts';
import { Supernode } from '../../supernode/supernode.ts';

export const testLogger = pino({ level: process.env.POLLEN_TEST_LOG ?? 'silent' });

/** A supernode whose seed reaches `upstream` (the registry's URL; peers name it by its HOST:PORT). */
export async function startSupernode(options: { upstream: string; secret?: string; data?: string; listen?: string; syncRate?: number; smallPiecesFrom?: number; seedRegistryRate?: number }): Promise<{ node: Supernode; data: string }> {
  const data = options.data ?? (await mkdtemp(join(tmpdir(), 'pollen-sn-')));
  const node = new Supernode({ logger: testLogger }, { listen: options.listen ?? '127.0.0.1:0', adminListen: '127.0.0.1:0', data, secret: options.secret, upstream: options.upstream, maxParents: 6, logLevel: 'info', ...(options.syncRate === undefined ? {} : { syncRate: options.syncRate }), ...(options.smallPiecesFrom === undefined ? {} : { smallPiecesFrom: options.smallPiecesFrom }), ...(options.seedRegistryRate === undefined ? {} : { seedRegistryRate: options.seedRegistryRate }) });
  if (!options.data) {
    // A directory made here goes with the supernode (its seed's store holds whole blobs).
    const close = node.close.bind(node);
    node.close = async () => {
      await close();
      await rm(data, { recursive: true, force: true });
    };
  }
  await node.start();
  return { node, data };
}

export interface TestPeer {
  readonly agent: P2pAgent;
  readonly downloader: P2pDownloader;
  readonly store: FsContentStore;
  readonly dir: string;
  /** Downloads through the P2P downloader, waits for the commit, and returns the sha256 of what a client streamed. */
  pull(registry: string, name: string, digest: Digest): Promise<string>;
  close(): Promise<void>;
}

/** What a peer's ingests did about the digest: how often they forwent it, and each commit's `vouched`. */
export interface DigestWatch {
  forgone: number;
  readonly vouched: Array<boolean | undefined>;
}

/** Watches `peer`'s ingests from now on (its store's openIngest): forgoDigest calls and each commit's `vouched`. */
export function watchDigests(peer: TestPeer): DigestWatch {
  const seen: DigestWatch = { forgone: 0, vouched: [] };
  const open = peer.store.openIngest.bind(peer.store);
  peer.store.openIngest = async (digest, options) => {
    const ingest = await open(digest, options);
    const forgo = ingest.forgoDigest.bind(ingest);
    const commit = ingest.commit.bind(ingest);
    ingest.forgoDigest = () => (seen.forgone++, forgo());
    ingest.commit = (size, o) => (seen.vouched.push(o?.vouched), commit(size, o));
    return ingest;
  };
  return seen;
}

export async function startPeer(supernodes: string[], options: { secret?: string; dir?: string; timings?: Partial<TransferTimings>; uploadBytesPerSecond?: number; uploadSlots?: number } = {}): Promise<TestPeer> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'pollen-peer-')));
  const store = await FsContentStore.open(join(dir, 'store'));
  const kv: Kv<PersistedPieces> = await openLevelKv<PersistedPieces>(join(dir, 'meta'));
  const agent = new P2pAgent(
    { store, logger: testLogger, clock: steadyClock },
    {
      supernodes,
      secret: options.secret ?? '',
      wireListen: '127.0.0.1:0',
      wireAdvertise: undefined,
      uploadSlots: options.uploadSlots ?? 10,
      uploadBytesPerSecond: options.uploadBytesPerSecond ?? 0,
      maxConnections: 64,
      supernodeTimeoutMs: 2_000,
    },
  );
  await agent.start();
  const fallback = new UpstreamDownloader({ store, logger: testLogger, stats: { onUpstreamBytes: (n) => void (agent.totals.upstream += n) } });
  const downloader = new P2pDownloader({ agent, store, kv, fallback }, { timings: options.timings });
  return {
    agent,
    downloader,
    store,
    dir,
    async pull(registry, name, digest) {
      const partial = await downloader.start({ digest, sizeHint: undefined, upstream: { baseUrl: registry, name, authorization: undefined } });
      const hash = createHash('sha256');
      for await (const c of partial.createReadStream()) hash.update(c as Buffer);
      // A reader gets the last byte once the digest is verified, before the fsync and rename that
      // put the blob in the store; a pull is done when the blob is there.
      await partial.settledPromise();
      return `sha256:${hash.digest('hex')}`;
    },
    async close() {
      await downloader.close();
      await agent.close();
      await kv.close();
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
