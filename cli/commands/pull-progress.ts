// Progress of `pollen pull` per layer: on a terminal, one line per layer redrawn in place (at most
// every PROGRESS_REDRAW_MS); otherwise plain lines at each milestone, for logs.
import type { PullEvent } from '../../src/snapshot/image-puller.ts';

export const PROGRESS_REDRAW_MS = 100;

interface LayerLine {
  digest: string;
  downloaded: number;
  total: number;
  unpacked: number;
  state: 'waiting' | 'working' | 'done' | 'reused';
}

const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

export function createProgress(out: NodeJS.WriteStream): { onEvent: (e: PullEvent) => void; finish: () => void } {
  const tty = out.isTTY === true;
  const lines: LayerLine[] = [];
  let drawn = 0;
  let last = 0;
  const draw = (force = false): void => {
    const now = Date.now();
    if (!force && now - last < PROGRESS_REDRAW_MS) return;
    last = now;
    let s = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const [i, l] of lines.entries()) {
      const what = l.state === 'reused' ? 'already unpacked' : l.state === 'done' ? `done (${mib(l.total)})` : `download ${mib(l.downloaded)}/${mib(l.total)}  unpack ${mib(l.unpacked)}`;
      s += `\x1b[2Klayer ${i} ${l.digest.slice(7, 19)}  ${what}\n`;
    }
    drawn = lines.length;
    out.write(s);
  };
  const plain = (s: string): void => {
    if (!tty) out.write(`${s}\n`);
  };
  const onEvent = (e: PullEvent): void => {
    switch (e.type) {
      case 'resolved':
        plain(`resolved ${e.manifest}: ${e.layers} layers, ${e.reused} already unpacked`);
        for (let i = 0; i < e.layers; i++) lines.push({ digest: '', downloaded: 0, total: 0, unpacked: 0, state: i < e.reused ? 'reused' : 'waiting' });
        break;
      case 'download': {
        const l = lines[e.layer];
        if (!l) return;
        if (l.state === 'waiting') plain(`layer ${e.layer} ${e.digest}: downloading ${e.total} bytes`);
        Object.assign(l, { digest: e.digest, downloaded: e.bytes, total: e.total, state: l.state === 'done' ? 'done' : 'working' });
        if (e.bytes === e.total) plain(`layer ${e.layer}: downloaded`);
        break;
      }
      case 'unpack': {
        const l = lines[e.layer];
        if (l) l.unpacked = e.tarBytes;
        break;
      }
      case 'layer-done': {
        const l = lines[e.layer];
        if (l) l.state = 'done';
        plain(`layer ${e.layer}: unpacked into snapshot ${e.chainId}${e.warnings.length ? ` (${e.warnings.length} warnings)` : ''}`);
        for (const w of e.warnings) plain(`  warning: ${w.entry}: ${w.reason}`);
        break;
      }
      case 'bundle':
        plain(`bundle written to ${e.dir}`);
        break;
    }
    if (tty) draw(e.type !== 'download' && e.type !== 'unpack');
  };
  return { onEvent, finish: () => tty && draw(true) };
}
