// The discrete-event network model: hosts with upload and download caps, a one-way latency between
// any two hosts, and transfers modelled as fluid flows. A flow's first byte arrives after the
// latency; then it moves at min(up(src) / flows out of src, down(dst) / flows into dst), an
// equal-share approximation of TCP sharing that is recomputed (only for the flows touching the
// two hosts) whenever a flow starts or ends, so each event costs O(flows at those hosts).
import type { EventQueue, SimEvent } from './event-queue.ts';

export type HostId = number;

export interface SimHostSpec {
  upBytesPerS: number;
  downBytesPerS: number;
}

export interface NetworkOptions {
  /** One-way latency between two hosts in ms (default 0). */
  latencyMs?: (from: HostId, to: HostId) => number;
}

export interface Transfer {
  readonly from: HostId;
  readonly to: HostId;
  readonly bytes: number;
}

interface Flow extends Transfer {
  remaining: number;
  rateBytesPerS: number;
  lastMs: number;
  active: boolean;
  done: boolean;
  event: SimEvent | undefined;
  onDone: (atMs: number) => void;
}

interface HostState extends SimHostSpec {
  out: Set<Flow>;
  in: Set<Flow>;
  sentBytes: number;
  receivedBytes: number;
}

/** Bytes below which a flow counts as finished (floating-point dust). */
const EPSILON_BYTES = 1e-6;

export class SimNetwork {
  private readonly hosts: HostState[] = [];
  private readonly latency: (from: HostId, to: HostId) => number;

  constructor(
    private readonly queue: EventQueue,
    options: NetworkOptions = {},
  ) {
    this.latency = options.latencyMs ?? (() => 0);
  }

  addHost(spec: SimHostSpec): HostId {
    if (!(spec.upBytesPerS > 0) || !(spec.downBytesPerS > 0)) throw new Error('host caps must be positive bytes per second');
    this.hosts.push({ ...spec, out: new Set(), in: new Set(), sentBytes: 0, receivedBytes: 0 });
    return this.hosts.length - 1;
  }

  get hostCount(): number {
    return this.hosts.length;
  }

  sentBytes(h: HostId): number {
    return this.host(h).sentBytes;
  }

  receivedBytes(h: HostId): number {
    return this.host(h).receivedBytes;
  }

  /** Flows now moving out of / into a host. */
  activeFlows(h: HostId): { out: number; in: number } {
    const s = this.host(h);
    return { out: s.out.size, in: s.in.size };
  }

  /** Starts moving `bytes` from one host to another; onDone runs when the last byte has arrived. */
  transfer(from: HostId, to: HostId, bytes: number, onDone: (atMs: number) => void): Transfer {
    this.host(from);
    this.host(to);
    if (from === to) throw new Error('a transfer needs two different hosts');
    if (!(bytes > 0)) throw new Error(`a transfer moves a positive number of bytes, got ${bytes}`);
    const flow: Flow = { from, to, bytes, remaining: bytes, rateBytesPerS: 0, lastMs: 0, active: false, done: false, event: undefined, onDone };
    flow.event = this.queue.after(this.latency(from, to), () => this.activate(flow));
    return flow;
  }

  /** Stops a transfer (its onDone never runs); bytes already moved stay counted. */
  cancel(t: Transfer): void {
    const flow = t as Flow;
    if (flow.done) return;
    flow.done = true;
    this.queue.cancel(flow.event);
    if (flow.active) this.detach(flow);
  }

  private host(h: HostId): HostState {
    const s = this.hosts[h];
    if (!s) throw new Error(`no host ${h}`);
    return s;
  }

  private activate(flow: Flow): void {
    if (flow.done) return;
    flow.active = true;
    flow.lastMs = this.queue.now;
    const src = this.host(flow.from);
    const dst = this.host(flow.to);
    src.out.add(flow);
    dst.in.add(flow);
    this.rebalance(src, dst);
  }

  private finish(flow: Flow): void {
    this.settle(flow);
    // Floating-point dust: the flow has moved all its bytes.
    this.host(flow.from).sentBytes += flow.remaining;
    this.host(flow.to).receivedBytes += flow.remaining;
    flow.remaining = 0;
    flow.done = true;
    this.detach(flow);
    flow.onDone(this.queue.now);
  }

  private detach(flow: Flow): void {
    this.settle(flow);
    flow.active = false;
    const src = this.host(flow.from);
    const dst = this.host(flow.to);
    src.out.delete(flow);
    dst.in.delete(flow);
    this.rebalance(src, dst);
  }

  /** Moves a flow's progress up to now at its current rate. */
  private settle(flow: Flow): void {
    if (!flow.active) return;
    const moved = Math.min(flow.remaining, (flow.rateBytesPerS * (this.queue.now - flow.lastMs)) / 1000);
    flow.remaining -= moved;
    flow.lastMs = this.queue.now;
    this.host(flow.from).sentBytes += moved;
    this.host(flow.to).receivedBytes += moved;
  }

  private rebalance(src: HostState, dst: HostState): void {
    const affected = new Set<Flow>([...src.out, ...dst.in]);
    for (const f of affected) {
      const s = this.host(f.from);
      const d = this.host(f.to);
      const rate = Math.min(s.upBytesPerS / s.out.size, d.downBytesPerS / d.in.size);
      if (rate === f.rateBytesPerS && f.event && !f.event.cancelled) continue;
      this.settle(f);
      f.rateBytesPerS = rate;
      this.queue.cancel(f.event);
      const leftMs = f.remaining <= EPSILON_BYTES ? 0 : (f.remaining / rate) * 1000;
      f.event = this.queue.after(leftMs, () => this.finish(f));
    }
  }
}
