// The discrete-event network model: hosts with upload and download caps, a one-way latency between
// any two hosts, and transfers modelled as fluid flows. A flow's first byte arrives after the
// latency; from then on it moves at a rate given by an approximate max-min fair share of every
// host's links, which is how competing TCP flows with similar round trips settle: each host's
// upload is water-filled over its outgoing flows (a flow held back at its receiver leaves its
// share to the others), then each host's download over its incoming flows, twice over.
//
// Rates are recomputed for the whole network at most once per `quantumMs` of simulated time, after
// any flow started, ended or was cancelled: a new flow waits up to a quantum for its rate (much as
// TCP takes round trips to ramp up) and an ended flow's share stays idle that long. With the
// default quantum of 0 the model is exact event by event; at 10,000 hosts a quantum of a few ms
// keeps a run to minutes. Completions are exact: a flow that will end before the next recompute
// gets its own event at the instant its last byte arrives.
//
// With `cores`, the hosts' processes share one machine's CPU, as on the fan-out bed: each byte
// costs its sender and its receiver CPU time, and a process's work that no byte pays for (the part
// of a pull that does not grow with its size) runs as work of its own (compute()), moving like a
// flow at one core at most.
import type { EventQueue, SimEvent } from './event-queue.ts';

export type HostId = number;

export interface SimHostSpec {
  upBytesPerS: number;
  downBytesPerS: number;
  /** CPU nanoseconds this host's process spends per byte it sends / receives, on the shared cores (default 0: free). */
  sendNsPerByte?: number;
  receiveNsPerByte?: number;
}

export interface NetworkOptions {
  /** One-way latency between two hosts in ms (default 0). */
  latencyMs?: (from: HostId, to: HostId) => number;
  /** Rates are recomputed at most once per this many simulated ms (default 0: after every change). */
  quantumMs?: number;
  /**
   * Cores the hosts' processes share (default Infinity). When the flows' CPU cost (the hosts'
   * ns per byte sent and received) asks for more, every flow that costs CPU slows in proportion,
   * as processes on a loaded machine do: the fan-out bed runs all its hosts on 2 cores.
   */
  cores?: number;
  /**
   * How much cheaper a byte gets on a crowded machine (default 0: not at all; below 1). When the
   * hosts' processes ask L > 1 times the cores, each byte costs L^-contention of what it costs on an
   * idle machine: a process that waits for a core finds more bytes queued at each wake-up, and pays
   * a wake-up's fixed work over more of them. So the flows slow by L^(1 - contention), not L.
   */
  contention?: number;
}

export interface Transfer {
  readonly from: HostId;
  readonly to: HostId;
  readonly bytes: number;
}

interface Flow extends Transfer {
  /**
   * CPU work of one host's process, not bytes on a link (compute()): `bytes` and `remaining` count
   * ns of one core's time, moving at up to NS_PER_S a second. Work is in no host's in or out.
   */
  work: boolean;
  remaining: number;
  rateBytesPerS: number;
  lastMs: number;
  active: boolean;
  done: boolean;
  /** The latency wait before activation, or the exact completion once it is near. */
  event: SimEvent | undefined;
  onDone: (atMs: number) => void;
  /** Scratch of the rate computation: what the receiver allows, then what the sender gives. */
  allowBytesPerS: number;
  upBytesPerS: number;
}

interface HostState extends SimHostSpec {
  sendNsPerByte: number;
  receiveNsPerByte: number;
  out: Set<Flow>;
  in: Set<Flow>;
  sentBytes: number;
  receivedBytes: number;
  /** Water level of the download in the last pass: the rate a flow not held back elsewhere gets. */
  downLevel: number;
}

/** Bytes below which a flow counts as finished (floating-point dust). */
const EPSILON_BYTES = 1e-6;
/** Completion events are laid out this far ahead (or a quantum, if longer). */
const HORIZON_MS = 20;
/** Upload-then-download water-filling rounds per recompute. */
const FILL_ROUNDS = 2;
/** A process's work moves this many ns of CPU time a second at most: one core. */
const NS_PER_S = 1e9;

export class SimNetwork {
  private readonly hosts: HostState[] = [];
  private readonly latency: (from: HostId, to: HostId) => number;
  private readonly quantumMs: number;
  private readonly cores: number;
  private readonly contention: number;
  private readonly flows = new Set<Flow>();
  private recompute: SimEvent | undefined;
  private lastRecomputeMs = -Infinity;
  private dirty = false;

  constructor(
    private readonly queue: EventQueue,
    options: NetworkOptions = {},
  ) {
    this.latency = options.latencyMs ?? (() => 0);
    this.quantumMs = options.quantumMs ?? 0;
    this.cores = options.cores ?? Infinity;
    this.contention = options.contention ?? 0;
    if (!(this.quantumMs >= 0)) throw new Error('quantumMs must be >= 0');
    if (!(this.cores > 0)) throw new Error('cores must be > 0');
    if (!(this.contention >= 0 && this.contention < 1)) throw new Error('contention must be >= 0 and < 1');
  }

  addHost(spec: SimHostSpec): HostId {
    if (!(spec.upBytesPerS > 0) || !(spec.downBytesPerS > 0)) throw new Error('host caps must be positive bytes per second');
    if (!((spec.sendNsPerByte ?? 0) >= 0) || !((spec.receiveNsPerByte ?? 0) >= 0)) throw new Error('CPU costs must be >= 0 ns per byte');
    this.hosts.push({ ...spec, sendNsPerByte: spec.sendNsPerByte ?? 0, receiveNsPerByte: spec.receiveNsPerByte ?? 0, out: new Set(), in: new Set(), sentBytes: 0, receivedBytes: 0, downLevel: 0 });
    return this.hosts.length - 1;
  }

  /** Changes a host's upload cap: its flows share the new one from the next recompute on. */
  setUpCap(h: HostId, upBytesPerS: number): void {
    if (!(upBytesPerS > 0)) throw new Error('host caps must be positive bytes per second');
    const host = this.host(h);
    if (host.upBytesPerS === upBytesPerS) return;
    host.upBytesPerS = upBytesPerS;
    this.markDirty();
  }

  /** A host's upload cap now, bytes a second. */
  upCap(h: HostId): number {
    return this.host(h).upBytesPerS;
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

  /** Bytes per second now moving out of / into a host (settled at the last recompute). */
  rates(h: HostId): { out: number; in: number } {
    const s = this.host(h);
    let out = 0;
    let into = 0;
    for (const f of s.out) out += f.rateBytesPerS;
    for (const f of s.in) into += f.rateBytesPerS;
    return { out, in: into };
  }

  /**
   * Starts moving `bytes` from one host to another; onDone runs when the last byte has arrived. A
   * flow that continues a stream already under way (the next block on a busy connection) passes
   * `continued`: its first byte does not wait the latency again.
   */
  transfer(from: HostId, to: HostId, bytes: number, onDone: (atMs: number) => void, continued = false): Transfer {
    this.host(from);
    this.host(to);
    if (from === to) throw new Error('a transfer needs two different hosts');
    if (!(bytes > 0)) throw new Error(`a transfer moves a positive number of bytes, got ${bytes}`);
    const flow: Flow = { from, to, bytes, work: false, remaining: bytes, rateBytesPerS: 0, lastMs: 0, active: false, done: false, event: undefined, onDone, allowBytesPerS: 0, upBytesPerS: 0 };
    flow.event = this.queue.after(continued ? 0 : this.latency(from, to), () => this.activate(flow));
    return flow;
  }

  /**
   * Runs `cpuS` CPU seconds of a host's process that are no byte's cost (a pull's fixed part, say):
   * one core's worth a second at most, less when the machine's cores are shared out (`cores`).
   * onDone runs when it is done; cancel() stops it.
   */
  compute(h: HostId, cpuS: number, onDone: (atMs: number) => void): Transfer {
    this.host(h);
    if (!(cpuS > 0)) throw new Error(`work takes a positive number of CPU seconds, got ${cpuS}`);
    const bytes = cpuS * NS_PER_S;
    const flow: Flow = { from: h, to: h, bytes, work: true, remaining: bytes, rateBytesPerS: 0, lastMs: 0, active: false, done: false, event: undefined, onDone, allowBytesPerS: 0, upBytesPerS: 0 };
    this.activate(flow);
    return flow;
  }

  /** Stops a transfer (its onDone never runs); bytes already moved stay counted. */
  cancel(t: Transfer): void {
    const flow = t as Flow;
    if (flow.done) return;
    flow.done = true;
    this.queue.cancel(flow.event);
    flow.event = undefined;
    if (flow.active) this.detach(flow);
  }

  private host(h: HostId): HostState {
    const s = this.hosts[h];
    if (!s) throw new Error(`no host ${h}`);
    return s;
  }

  private activate(flow: Flow): void {
    flow.event = undefined;
    if (flow.done) return;
    flow.active = true;
    flow.lastMs = this.queue.now;
    this.flows.add(flow);
    if (!flow.work) {
      this.hosts[flow.from]!.out.add(flow);
      this.hosts[flow.to]!.in.add(flow);
    }
    this.markDirty();
  }

  private finish(flow: Flow): void {
    flow.event = undefined;
    this.settle(flow);
    // Floating-point dust: the flow has moved all its bytes.
    this.count(flow, flow.remaining);
    flow.remaining = 0;
    flow.done = true;
    this.detach(flow);
    flow.onDone(this.queue.now);
  }

  private detach(flow: Flow): void {
    this.settle(flow);
    flow.active = false;
    flow.rateBytesPerS = 0;
    this.flows.delete(flow);
    this.hosts[flow.from]!.out.delete(flow);
    this.hosts[flow.to]!.in.delete(flow);
    this.markDirty();
  }

  /** Moves a flow's progress up to now at its current rate. */
  private settle(flow: Flow): void {
    if (!flow.active) return;
    const now = this.queue.now;
    const moved = Math.min(flow.remaining, (flow.rateBytesPerS * (now - flow.lastMs)) / 1000);
    flow.remaining -= moved;
    flow.lastMs = now;
    this.count(flow, moved);
  }

  private count(flow: Flow, moved: number): void {
    if (flow.work) return;
    this.hosts[flow.from]!.sentBytes += moved;
    this.hosts[flow.to]!.receivedBytes += moved;
  }

  /** A flow started or ended: recompute the rates as soon as the quantum allows. */
  private markDirty(): void {
    this.dirty = true;
    const at = Math.max(this.queue.now, this.lastRecomputeMs + this.quantumMs);
    if (this.recompute && !this.recompute.cancelled && this.recompute.atMs <= at) return;
    this.queue.cancel(this.recompute);
    this.recompute = this.queue.at(at, () => this.rebalance());
  }

  private rebalance(): void {
    this.recompute = undefined;
    const now = this.queue.now;
    if (this.dirty) {
      this.dirty = false;
      this.lastRecomputeMs = now;
      for (const f of this.flows) this.settle(f);
      this.fill();
    }
    // Flows that end within the horizon get an exact completion event (rates hold until the next
    // recompute, which comes no sooner than a quantum after a change); the others are looked at
    // again at the horizon. A horizon per flow end would wake the model once per flow.
    const horizon = now + Math.max(this.quantumMs, HORIZON_MS);
    let beyond = false;
    for (const f of this.flows) {
      this.settle(f);
      const endMs = f.remaining <= EPSILON_BYTES ? now : f.rateBytesPerS > 0 ? now + (f.remaining / f.rateBytesPerS) * 1000 : Infinity;
      if (endMs <= horizon) {
        if (f.event && !f.event.cancelled && f.event.atMs === endMs) continue;
        this.queue.cancel(f.event);
        f.event = this.queue.at(endMs, () => this.finish(f));
      } else {
        if (f.event) {
          this.queue.cancel(f.event);
          f.event = undefined;
        }
        if (Number.isFinite(endMs)) beyond = true;
      }
    }
    if (beyond && !this.recompute) this.recompute = this.queue.at(horizon, () => this.rebalance());
  }

  /** Approximate max-min fair rates for every active flow. */
  private fill(): void {
    for (const f of this.flows) {
      if (f.work) {
        f.rateBytesPerS = NS_PER_S;
        continue;
      }
      const dst = this.hosts[f.to]!;
      f.allowBytesPerS = dst.downBytesPerS / dst.in.size;
    }
    for (let round = 0; round < FILL_ROUNDS; round++) {
      for (const h of this.hosts) {
        if (h.out.size > 0) waterFill(h.upBytesPerS, h.out, (f) => f.allowBytesPerS, (f, r) => (f.upBytesPerS = r));
      }
      for (const h of this.hosts) {
        if (h.in.size > 0) h.downLevel = waterFill(h.downBytesPerS, h.in, (f) => f.upBytesPerS, (f, r) => (f.rateBytesPerS = r));
      }
      // What each receiver would allow a flow that asked for more: its download's water level.
      for (const f of this.flows) if (!f.work) f.allowBytesPerS = Math.max(f.rateBytesPerS, this.hosts[f.to]!.downLevel);
    }
    if (Number.isFinite(this.cores)) this.shareCores();
  }

  /**
   * When the flows' CPU and the processes' work together need more than the cores, slows both in
   * proportion, the bytes made cheaper first by the crowding (`contention`).
   */
  private shareCores(): void {
    let bytesDemand = 0;
    let workDemand = 0;
    for (const f of this.flows) {
      if (f.work) workDemand += f.rateBytesPerS / NS_PER_S;
      else bytesDemand += f.rateBytesPerS * this.nsPerByte(f) * 1e-9;
    }
    const load = (bytesDemand + workDemand) / this.cores;
    if (load <= 1) return;
    const demand = bytesDemand * load ** -this.contention + workDemand;
    if (demand <= this.cores) return;
    const scale = this.cores / demand;
    for (const f of this.flows) if (f.work || this.nsPerByte(f) > 0) f.rateBytesPerS *= scale;
  }

  private nsPerByte(f: Flow): number {
    return f.work ? 0 : this.hosts[f.from]!.sendNsPerByte + this.hosts[f.to]!.receiveNsPerByte;
  }
}

/**
 * Shares `capacity` over `flows`, none getting more than its cap: flows capped below an equal
 * share keep their cap, the rest split what is left equally. Returns that equal share (the level).
 */
function waterFill(capacity: number, flows: Set<Flow>, cap: (f: Flow) => number, set: (f: Flow, rate: number) => void): number {
  const sorted = [...flows].sort((a, b) => cap(a) - cap(b));
  let left = capacity;
  let n = sorted.length;
  let level = left / n;
  for (const f of sorted) {
    const c = cap(f);
    if (c < level) {
      set(f, c);
      left -= c;
      n--;
      level = n > 0 ? left / n : level;
    } else {
      set(f, level);
    }
  }
  return level;
}
