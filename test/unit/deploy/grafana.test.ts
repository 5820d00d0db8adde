// The Grafana dashboard shows only series the daemons export: every expr's metric names are looked
// up in what a real peer and a real supernode (in-process, on 127.0.0.1) answer at /metrics.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PEER_SETTINGS, peerConfigFrom } from '../../../peer/config.ts';
import { Peer } from '../../../peer/peer.ts';
import { resolveConfig } from '../../../src/config.ts';
import { Supernode } from '../../../supernode/supernode.ts';

const DASHBOARD = resolve(import.meta.dirname, '../../../deploy/grafana/pollen.json');
const logger = pino({ level: 'silent' });
let dir: string;
let supernode: Supernode;
let peer: Peer;

/** Sample names a scrape can hold: every family from `# TYPE`, histograms with their suffixes. */
export function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or labels. */
export function metricNames(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, '').replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  return [...withoutLabels.matchAll(/\b([a-z_:][a-z0-9_:]*)\b(?!\s*\()/g)].map((m) => m[1]!).filter((n) => !/^(by|without|offset|bool|and|or|unless|le)$/.test(n) && /_/.test(n));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pollen-grafana-'));
  supernode = new Supernode({ logger }, { listen: '127.0.0.1:0', adminListen: '127.0.0.1:0', data: join(dir, 'sn'), secret: undefined, maxParents: 6, logLevel: 'info' });
  await supernode.start();
  const values = resolveConfig(PEER_SETTINGS, { listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0', wire: '127.0.0.1:0', data: join(dir, 'peer'), supernode: [supernode.url] }, {});
  peer = new Peer({ logger }, peerConfigFrom(values));
  await peer.start();
}, 60_000);

afterAll(async () => {
  await peer?.close();
  await supernode?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('deploy/grafana/pollen.json', () => {
  it('reads the PromQL names right', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, kind) (rate(pollen_x_bucket{kind="blob"}[5m])))')).toEqual(['pollen_x_bucket']);
    expect(metricNames('sum(rate(a_b[1m])) / sum(rate(c_d{x="y"}[1m]))')).toEqual(['a_b', 'c_d']);
  });

  it('queries only series the peer and the supernode export', async () => {
    const scrape = async (url: string): Promise<string> => (await fetch(`${url}/metrics`)).text();
    const exported = new Set([...exportedNames(await scrape(peer.metricsUrl)), ...exportedNames(await scrape(supernode.adminUrl))]);
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThan(15);
    for (const { panel, expr } of exprs) {
      const names = metricNames(expr);
      expect(names.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const n of names) expect(exported.has(n), `${panel}: ${n} is not exported`).toBe(true);
    }
  });

  it('names no process_process_ series', async () => {
    const text = await (await fetch(`${peer.metricsUrl}/metrics`)).text();
    expect(text).toContain('pollen_peer_process_cpu_seconds_total');
    expect(text).not.toContain('process_process_');
  });
});
