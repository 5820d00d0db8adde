#!/usr/bin/env node
// The `pollen` command: runs the compiled JavaScript in dist/ (`npm run build`). Source maps are
// off unless asked for (`NODE_OPTIONS=--enable-source-maps`): node reads an error's stack whenever
// a stream is destroyed with one (a closed socket, an aborted body), and with maps on the first
// such read parses the bundle's 2 MB map, 0.1-0.16 CPU s in every daemon of the fan-out bed. The
// bundle keeps function names, so stacks stay readable without them. In a checkout (the sources
// are next to dist/) a dist/ that is missing or older than the sources is refused rather than run:
// it would be old code. The npm package ships dist/ alone, so there is nothing to compare with there.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { setFlagsFromString } from 'node:v8';

// V8 optimises a function once it has run INTERRUPT_BUDGET bytes of bytecode. Its default (66 KiB,
// tuned for web pages) has a peer compile ~90 functions with TurboFan in the first seconds of
// every pull: 15 % of a peer's CPU in a 64 MiB fan-out (perf, N = 8). Four times the budget
// optimises only what stays hot: 8-9 % less CPU for the bed's peers, 10-20 % less user CPU per GiB
// on loopback (256 MiB), the same code once warm. Set before any of Pollen's code runs; a budget
// given on node's own command line wins.
const INTERRUPT_BUDGET = 4 * 67584;
if (!process.execArgv.some((a) => a.startsWith('--interrupt-budget'))) setFlagsFromString(`--interrupt-budget=${INTERRUPT_BUDGET}`);
// undici parses HTTP with llhttp compiled to WebAssembly; V8 compiles it with Liftoff, then
// recompiles its hot parser functions with TurboFan in the background: ~0.1 CPU s in every process
// that makes a request (4 % of a peer's samples on the bed), for headers that Liftoff's code parses
// fast enough (2,000 requests: 60-100 ms less CPU with Liftoff only, bodies included).
if (!process.execArgv.some((a) => a.includes('liftoff'))) setFlagsFromString('--liftoff-only');
// A daemon's live heap is small (~17 MB) while its bodies flow through short-lived buffers. With
// V8's own growing factor the old generation's limit stayed ~15 MB above the live size, and a peer
// pulling from the seed ran a full mark-compact every ~70 ms (25 per 256 MiB, each freeing ~2 MB):
// a quarter of its CPU, and as much in the supernode serving it. Letting the old generation grow
// to three times what survived the last full collection (V8 itself goes up to four) leaves 1-2 per
// pull: seed path, peer -21 % CPU per GiB plain and -16 % TLS, supernode -12 % TLS (bench:peer-cpu).
// Still bounded: three times the live heap, under node's heap limit.
if (!process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) setFlagsFromString('--heap-growing-percent=200');
// V8's memory reducer shrinks a heap it takes for idle: 8 s after a full collection, when the JS
// heap allocates little, it runs up to three more. A peer's bytes flow through buffers outside the
// JS heap, so in the middle of a pull it looks idle: with --trace-gc, 7 of the 9 daemons of the
// fan-out bed (64 MiB, N = 8) ran 2-3 such collections (9-65 ms of main thread each, and V8's
// helper threads) 8.3-9.8 s after they started, during the pulls. Started a minute after the last
// full collection, none ran during a pull and a quiet daemon still gives the memory back (RSS 122
// -> 104 MiB within 80 s of a 128 MiB pull): daemons' CPU 10.36 / 8.83 / 7.02 -> 8.45 / 7.88 /
// 6.26 s in three alternating pairs (all-done 8.15 / 7.67 / 7.61 -> 7.77 / 7.56 / 7.58 s).
if (!process.execArgv.some((a) => a.startsWith('--gc-memory-reducer-start-delay-ms'))) setFlagsFromString('--gc-memory-reducer-start-delay-ms=60000');

const root = dirname(import.meta.dirname);
if (existsSync(new URL('../tsconfig.build.json', import.meta.url))) {
  const { distStaleness } = await import('../scripts/dist-state.js');
  const stale = distStaleness(root);
  if (stale !== undefined) {
    process.stderr.write(`pollen: ${stale}: run \`npm run build\` in ${root}\n`);
    process.exit(1);
  }
}
const { main } = await import('../dist/bundle/main.js');
await main(process.argv);
