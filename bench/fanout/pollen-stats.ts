// What the Pollen peers say about their transfers, read from their logs: every 'blob committed'
// line (peer/p2p/p2p-transfer.ts) carries the bytes received, the bytes thrown away by cause, and
// the fallbacks, stalled parents, declined seed grants, parent dials and answered syncs of that blob. Summed over a scenario's
// peers they are the report's duplicate, fallback, stall and starved-grant columns. The supernode's
// 'supernode stopping' line gives the seed pieces it granted, by kind (supernode/p2p/scheduler.ts).

export interface TransferSummary {
  /** 'blob committed' lines read. */
  blobs: number;
  receivedBytes: number;
  duplicateBytes: number;
  duplicatesByCause: Record<string, number>;
  fallbacks: number;
  stalls: number;
  starvedGrants: number;
  /** Wire connections the peers opened to parents, and syncs the supernode answered. */
  dials: number;
  syncs: number;
  /** Seed pieces the supernode granted: the first copies (unheld) and those for starved peers (absent without the supernode's line). */
  seedGrants?: { unheld: number; starved: number };
}

const num = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : 0);

/** Sums the 'blob committed' lines of the peers' outputs (pino JSON, one object a line; other lines are skipped). */
export function transferSummaryFromLogs(outputs: Iterable<string>): TransferSummary {
  const s: TransferSummary = { blobs: 0, receivedBytes: 0, duplicateBytes: 0, duplicatesByCause: {}, fallbacks: 0, stalls: 0, starvedGrants: 0, dials: 0, syncs: 0 };
  for (const text of outputs) {
    for (const line of text.split('\n')) {
      if (!line.includes('"blob committed"') && !line.includes('"supernode stopping"')) continue;
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (o.msg === 'supernode stopping') {
        const g = o.seedGrants as Record<string, unknown> | undefined;
        s.seedGrants = { unheld: (s.seedGrants?.unheld ?? 0) + num(g?.unheld), starved: (s.seedGrants?.starved ?? 0) + num(g?.starved) };
        continue;
      }
      if (o.msg !== 'blob committed') continue;
      s.blobs++;
      s.receivedBytes += num(o.received);
      s.fallbacks += num(o.fallbacks);
      s.stalls += num(o.stalls);
      s.starvedGrants += num(o.starvedGrants);
      s.dials += num(o.dials);
      s.syncs += num(o.syncs);
      const d = o.duplicates;
      if (d && typeof d === 'object') {
        for (const [cause, bytes] of Object.entries(d as Record<string, unknown>)) {
          s.duplicatesByCause[cause] = (s.duplicatesByCause[cause] ?? 0) + num(bytes);
          s.duplicateBytes += num(bytes);
        }
      }
    }
  }
  return s;
}

/**
 * When a peer handed its client the last byte of the last blob it had to fetch: the time (epoch ms)
 * of the peer's last 'access' line of a blob GET answered 200 from anywhere but its own store
 * (`source` "local": skopeo reads the image's config again from it at the end), logged as the
 * response ended; or undefined when there is none. What the client does after (skopeo checks the
 * digest and fsyncs each blob before its rename) is the client's, not the fan-out's.
 */
export function lastBlobServedMs(log: string): number | undefined {
  let last: number | undefined;
  for (const line of log.split('\n')) {
    if (!line.includes('"access"') || !line.includes('/blobs/')) continue;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (o.msg !== 'access' || o.method !== 'GET' || o.status !== 200 || o.source === 'local' || typeof o.path !== 'string' || !o.path.includes('/blobs/')) continue;
    const t = num(o.time);
    if (t > 0 && (last === undefined || t > last)) last = t;
  }
  return last;
}
