import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/metrics.ts';

describe('Metrics', () => {
  it('names the process defaults once: pollen_peer_process_..., never process_process_', async () => {
    const text = await new Metrics({ prefix: 'pollen_peer_', defaults: true }).text();
    expect(text).toContain('pollen_peer_process_cpu_user_seconds_total');
    expect(text).toContain('pollen_peer_nodejs_eventloop_lag_seconds');
    expect(text).not.toMatch(/process_process_/);
  });

  it('counterFrom adds what a running total grew by at each scrape', async () => {
    let total = 0;
    const m = new Metrics({ prefix: 't_' });
    m.counterFrom('t_bytes_total', 'bytes', ['direction'], () => [[{ direction: 'upload' }, total]]);
    expect(await m.text()).toContain('t_bytes_total{direction="upload"} 0');
    total = 500;
    expect(await m.text()).toContain('t_bytes_total{direction="upload"} 500');
    total = 700;
    expect(await m.text()).toContain('t_bytes_total{direction="upload"} 700');
  });

  it('gauges read their value at scrape time', async () => {
    let v = 3;
    const m = new Metrics({ prefix: 't_' });
    m.gauge('t_peers', 'peers', [], (g) => g.set(v));
    expect(await m.text()).toContain('t_peers 3');
    v = 5;
    expect(await m.text()).toContain('t_peers 5');
  });
});
