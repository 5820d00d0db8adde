(globalThis as any).FREE_BONUS = Number(process.env.FB ?? 1);
(globalThis as any).ROTATE_MS = Number(process.env.RM ?? Infinity);
(globalThis as any).CHOKE_PATIENCE_MS = Number(process.env.CP ?? Infinity);
import { runPollenSwarm } from './sim/pollen-swarm.ts';
import { mulberry32 } from './sim/sim-bench.ts';
const n = Number(process.argv[2] ?? 100);
const extra = JSON.parse(process.argv[3] ?? '{}');
const up = 12.5e6;
const S = 256 * 1024 * 1024;
const rows: string[] = [];
const r = runPollenSwarm({ peers: n, blobBytes: S, peerUpBytesPerS: up, peerDownBytesPerS: up, originUpBytesPerS: up, random: mulberry32(1), maxSimMs: 300_000, ...extra,
  sample: { everyMs: 2000, fn: (t, peers, net) => {
    const pc = peers[0]!.have.length; const pb = S / pc;
    const seedEmitted = Math.min(pc, Math.floor((t / 1000) * up / pb));
    const held = peers.map((p) => p.have.count).sort((a, b) => a - b);
    let din = 0, dout = 0, idleDown = 0, idleUp = 0;
    let rin = 0, rout = 0; for (const p of peers) { const rr = net.rates(p.host); rin += rr.in; rout += rr.out; } const seedOut = net.rates(0).out; for (const p of peers) { const f = net.activeFlows(p.host); din += f.in; dout += f.out; if (f.in === 0 && p.mode === 'p2p') idleDown++; if (f.out === 0) idleUp++; }
    const rx = peers.reduce((a, p) => a + net.receivedBytes(p.host), 0);
    let lu=0,lc=0,lw=0; for (const p of peers) { const s = p.linkStates(); lu+=s.unchoked; lc+=s.choked; lw+=s.connecting; }
    const lag = peers.reduce((a, p) => (p.have.count < a.have.count ? p : a)); const ls = lag.linkStates(); rows.push(`lag ${lag.peerId} u/c/w ${ls.unchoked}/${ls.choked}/${ls.connecting} in ${net.activeFlows(lag.host).in} rate ${(net.rates(lag.host).in/up).toFixed(2)} out ${net.activeFlows(lag.host).out}`);
    rows.push(`links u/c/w ${(lu/n).toFixed(1)}/${(lc/n).toFixed(1)}/${(lw/n).toFixed(1)} ${(t/1000).toFixed(0).padStart(4)} seed ${String(seedEmitted).padStart(4)} held min/med/max ${held[0]}/${held[held.length>>1]}/${held[held.length-1]}  flows in ${(din/n).toFixed(2)} out ${(dout/n).toFixed(2)}  idleDown ${idleDown} idleUp ${idleUp} rxMiB ${(rx/2**20).toFixed(0)} rateIn ${(rin/n/up).toFixed(2)} rateOut ${(rout/n/up).toFixed(2)} seed ${(seedOut/up).toFixed(2)} done ${peers.filter(p=>p.mode==='done').length}`);
  } } });
console.log(rows.join('\n'));
const d = r.doneMs.filter(Number.isFinite).sort((a, b) => a - b);
const q = (p: number) => (d[Math.floor(p * (d.length - 1))]! / 1000).toFixed(1);
console.log(JSON.stringify({ n, pieces: r.pieceCount, seedLastS: r.seedLastMs / 1000, min: q(0), p50: q(0.5), max: q(1), dupXS: r.totals.duplicate / S, fb: r.fallbacks, wall: (r.wallMs / 1000).toFixed(1), unfinished: r.unfinished }));
