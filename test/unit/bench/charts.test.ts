import { describe, expect, it } from 'vitest';
import { cdfSeries } from '../../../bench/fanout/charts.ts';
import { lineChart, niceTicks } from '../../../bench/fanout/svg.ts';

describe('SVG charts', () => {
  it('picks round ticks that cover the maximum', () => {
    expect(niceTicks(7.3)).toEqual([0, 2, 4, 6, 8]);
    expect(niceTicks(1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0)).toEqual([0, 1]);
  });

  it('turns completion times into a CDF that reaches 1 at the slowest host', () => {
    expect(cdfSeries([3, 1, 2, 4])).toEqual([
      [0, 0],
      [1, 0.25],
      [2, 0.5],
      [3, 0.75],
      [4, 1],
    ]);
  });

  it('draws one polyline per series, a legend entry each, escapes names and skips non-finite points', () => {
    const svg = lineChart({
      title: 'a <b> & c',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        { name: 'direct', points: [[1, 2], [2, NaN], [3, 4]] },
        { name: 'T*', dashed: true, points: [[1, 1], [3, 1]] },
        { name: 'cdf', step: true, points: cdfSeries([1, 2]) },
      ],
    });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<polyline/g)).toHaveLength(3);
    expect(svg).toContain('a &lt;b&gt; &amp; c');
    expect(svg).not.toContain('NaN');
    expect(svg).toContain('stroke-dasharray');
    // A step CDF of two points from the origin has 1 + 2*2 vertices.
    const stepPoints = /<polyline[^>]*points="([^"]+)"[^>]*>\s*<line[^>]*>\s*<text[^>]*>cdf/.exec(svg)?.[1] ?? '';
    expect(stepPoints.split(' ')).toHaveLength(5);
  });
});
