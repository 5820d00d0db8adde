// Per-host link caps and byte counters with tc, inside the host's namespace:
// upload = tbf on eth0's egress; download = eth0's ingress redirected (mirred) to an ifb device with
// a tbf on its egress. The ingress redirect is done by one u32 filter per named source address plus
// a catch-all, so each filter's action counter tells the bytes received from that source.
import { run } from './exec.ts';

export const HOST_IF = 'eth0';
export const IFB_IF = 'ifb0';
const CATCH_ALL_PRIO = 99;

export interface CountedSource {
  name: string;
  ip: string;
}

export interface LinkCaps {
  /** Upload cap in Mbit/s (undefined: uncapped). */
  upMbit?: number | undefined;
  /** Download cap in Mbit/s (undefined: uncapped, still counted). */
  downMbit?: number | undefined;
}

/**
 * The largest packet the kernel hands a qdisc on the bed's veths, as tbf counts it: a TSO packet of
 * 64 KiB (GSO_LEGACY_MAX_SIZE) plus the headers of each of its ~45 segments, ~68.5 KB.
 */
export const MAX_GSO_QDISC_BYTES = 65_536 + 45 * 66;
/**
 * The bucket's floor. tbf cuts any packet longer than its bucket into MSS-sized segments in software
 * (tbf_segment), so with a 64 KiB bucket every full TSO packet crossed the link as ~45 frames, each
 * then costing the machine a trip through veth, bridge, ifb and both hosts' TCP; a sender whose
 * congestion control paced in smaller TSO packets did not pay it. A NIC segments in hardware and the
 * receiver's GRO joins the frames again, so the bed must not charge that work to its CPU: measured on
 * one run each (64 MiB, N = 4), packets per MiB received went from 575 to 77 for Pollen and from 166
 * to 57 for BitTorrent, and their daemons' CPU from 13.3 to 7.2 s and from 2.6 to 1.8 s.
 */
export const MIN_BURST_BYTES = 128 * 1024;

/** tbf parameters for a rate: the bucket holds a whole TSO packet (MIN_BURST_BYTES) and one 4 ms tick of traffic (HZ=250). */
export function tbfArgs(mbit: number): string[] {
  if (!(mbit > 0)) throw new Error(`link rate must be a positive number of Mbit/s, got ${mbit}`);
  const bytesPerS = (mbit * 1e6) / 8;
  const burst = Math.max(MIN_BURST_BYTES, Math.ceil(bytesPerS / 250));
  return ['tbf', 'rate', `${mbit}mbit`, 'burst', String(burst), 'latency', '50ms'];
}

export async function shapeHost(tc: string, ip: string, ns: string, caps: LinkCaps, sources: readonly CountedSource[]): Promise<void> {
  if (caps.upMbit !== undefined) await run(tc, ['-n', ns, 'qdisc', 'add', 'dev', HOST_IF, 'root', ...tbfArgs(caps.upMbit)]);
  await run(ip, ['-n', ns, 'link', 'add', IFB_IF, 'type', 'ifb']);
  await run(ip, ['-n', ns, 'link', 'set', IFB_IF, 'up']);
  if (caps.downMbit !== undefined) await run(tc, ['-n', ns, 'qdisc', 'add', 'dev', IFB_IF, 'root', ...tbfArgs(caps.downMbit)]);
  await run(tc, ['-n', ns, 'qdisc', 'add', 'dev', HOST_IF, 'handle', 'ffff:', 'ingress']);
  const redirect = ['action', 'mirred', 'egress', 'redirect', 'dev', IFB_IF];
  for (const [i, s] of sources.entries()) {
    await run(tc, ['-n', ns, 'filter', 'add', 'dev', HOST_IF, 'parent', 'ffff:', 'protocol', 'ip', 'prio', String(i + 1), 'u32', 'match', 'ip', 'src', `${s.ip}/32`, ...redirect]);
  }
  await run(tc, ['-n', ns, 'filter', 'add', 'dev', HOST_IF, 'parent', 'ffff:', 'protocol', 'all', 'prio', String(CATCH_ALL_PRIO), 'u32', 'match', 'u32', '0', '0', ...redirect]);
}

export interface HostCounters {
  /** Bytes sent and received on the host's link (IP packets as the interface counts them). */
  txBytes: number;
  rxBytes: number;
  /** Packets sent and received on the host's link (small writes cost the bed's shaping and bridging per packet). */
  txPackets: number;
  rxPackets: number;
  /** Bytes received per counted source; `other` is everything else (peers, ARP). */
  rxFrom: Record<string, number>;
  /**
   * Bytes the download shaper passed on to the host (the ifb's root qdisc). rxBytes counts a packet
   * as it arrives, before that queue, so it also holds what the queue dropped (and TCP sent again),
   * bytes a host behind a switch port would never see. The qdisc counts every segment of a GRO
   * aggregate with its headers (qdisc_pkt_len), so with no drop this is ~4.4 % above rxBytes.
   */
  deliveredBytes: number;
  /** Packets that queue dropped (each sent again by TCP, so counted twice in rxBytes). */
  downDrops: number;
}

interface TcFilter {
  pref?: number;
  options?: { actions?: { stats?: { bytes?: number } }[] };
}

interface TcQdisc {
  root?: boolean;
  bytes?: number;
  drops?: number;
}

interface IpLink {
  stats64?: { rx?: { bytes?: number; packets?: number }; tx?: { bytes?: number; packets?: number } };
}

export async function readCounters(tc: string, ip: string, ns: string, sources: readonly CountedSource[]): Promise<HostCounters> {
  const [linkJson, filterJson, ifbJson] = await Promise.all([
    run(ip, ['-n', ns, '-s', '-j', 'link', 'show', 'dev', HOST_IF]),
    run(tc, ['-n', ns, '-s', '-j', 'filter', 'show', 'dev', HOST_IF, 'ingress']),
    run(tc, ['-n', ns, '-s', '-j', 'qdisc', 'show', 'dev', IFB_IF]),
  ]);
  const link = (JSON.parse(linkJson) as IpLink[])[0];
  const rxFrom: Record<string, number> = { other: 0 };
  for (const s of sources) rxFrom[s.name] = 0;
  for (const f of JSON.parse(filterJson) as TcFilter[]) {
    const bytes = f.options?.actions?.[0]?.stats?.bytes;
    if (bytes === undefined || f.pref === undefined) continue;
    const name = f.pref === CATCH_ALL_PRIO ? 'other' : sources[f.pref - 1]?.name;
    if (name !== undefined) rxFrom[name] = (rxFrom[name] ?? 0) + bytes;
  }
  const stats = link?.stats64;
  const ifbRoot = (JSON.parse(ifbJson) as TcQdisc[]).find((q) => q.root);
  return { txBytes: stats?.tx?.bytes ?? 0, rxBytes: stats?.rx?.bytes ?? 0, txPackets: stats?.tx?.packets ?? 0, rxPackets: stats?.rx?.packets ?? 0, rxFrom, deliveredBytes: ifbRoot?.bytes ?? 0, downDrops: ifbRoot?.drops ?? 0 };
}

/** Counter differences (after - before), for measuring one phase of a run. */
export function counterDelta(after: HostCounters, before: HostCounters): HostCounters {
  const rxFrom: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.rxFrom)) rxFrom[k] = v - (before.rxFrom[k] ?? 0);
  return {
    txBytes: after.txBytes - before.txBytes,
    rxBytes: after.rxBytes - before.rxBytes,
    txPackets: after.txPackets - before.txPackets,
    rxPackets: after.rxPackets - before.rxPackets,
    rxFrom,
    deliveredBytes: after.deliveredBytes - before.deliveredBytes,
    downDrops: after.downDrops - before.downDrops,
  };
}
