// Which live peers a preheat job (all_peers) goes to: named ids or IPs, then a count or percentage.
import type { PeerSelection } from '../preheat/preheat-args.ts';

/** Peers chosen by id or IP, then capped by count or percentage (in id order, so it is stable). */
export function selectPeers(live: ReadonlyArray<{ id: string; addr: string }>, sel: PeerSelection): Array<{ id: string; addr: string }> {
  let chosen = [...live].sort((a, b) => (a.id < b.id ? -1 : 1));
  if (sel.ids) {
    const byId = new Map(chosen.map((p) => [p.id, p]));
    // Named peers that are not registered are kept: their tasks fail with a clear reason.
    chosen = sel.ids.map((id) => byId.get(id) ?? { id, addr: '' });
  }
  if (sel.ips) {
    const ips = new Set(sel.ips);
    chosen = chosen.filter((p) => ips.has(p.addr.replace(/^\[?([^\]]*?)\]?:\d+$/, '$1')));
  }
  if (sel.count !== undefined) chosen = chosen.slice(0, sel.count);
  else if (sel.percentage !== undefined) chosen = chosen.slice(0, Math.ceil((chosen.length * sel.percentage) / 100));
  return chosen;
}
