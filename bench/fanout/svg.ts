// A small SVG line-chart writer (no dependencies): axes with ticks, one polyline per series (steps
// for CDFs), dashed series for bounds, and a legend. Enough for the benchmark's charts.

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  /** Draw as a step function (a CDF). */
  step?: boolean;
  dashed?: boolean;
  /** Mark each point with a dot (default: for series that are not steps). */
  dots?: boolean;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  yMax?: number;
}

const WIDTH = 720;
const HEIGHT = 440;
const MARGIN = { left: 70, right: 180, top: 40, bottom: 55 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf', '#7f7f7f'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** About five round tick values from 0 to max. */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

export function lineChart(spec: ChartSpec): string {
  const finite = spec.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xTicks = niceTicks(Math.max(0, ...finite.map(([x]) => x)));
  const yTicks = niceTicks(spec.yMax ?? Math.max(0, ...finite.map(([, y]) => y)));
  const xMax = xTicks[xTicks.length - 1]!;
  const yMax = yTicks[yTicks.length - 1]!;
  const pw = WIDTH - MARGIN.left - MARGIN.right;
  const ph = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x: number): number => MARGIN.left + (x / xMax) * pw;
  const sy = (y: number): number => MARGIN.top + ph - (y / yMax) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${esc(spec.title)}</text>`,
  ];
  for (const t of xTicks) {
    out.push(`<line x1="${sx(t)}" y1="${MARGIN.top}" x2="${sx(t)}" y2="${MARGIN.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${sx(t)}" y="${MARGIN.top + ph + 18}" text-anchor="middle">${t}</text>`);
  }
  for (const t of yTicks) {
    out.push(`<line x1="${MARGIN.left}" y1="${sy(t)}" x2="${MARGIN.left + pw}" y2="${sy(t)}" stroke="#eee"/>`);
    out.push(`<text x="${MARGIN.left - 8}" y="${sy(t) + 4}" text-anchor="end">${t}</text>`);
  }
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${MARGIN.left + pw / 2}" y="${HEIGHT - 12}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${MARGIN.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`);
  for (const [i, s] of spec.series.entries()) {
    const color = COLORS[i % COLORS.length]!;
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const path: string[] = [];
    for (const [j, [x, y]] of pts.entries()) {
      if (s.step && j > 0) path.push(`${sx(x).toFixed(1)},${sy(pts[j - 1]![1]).toFixed(1)}`);
      path.push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
    }
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    if (path.length > 0) out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${path.join(' ')}"/>`);
    if (s.dots ?? !s.step) for (const [x, y] of pts) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${color}"/>`);
    const ly = MARGIN.top + 10 + i * 20;
    const lx = MARGIN.left + pw + 15;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 30}" y="${ly + 4}">${esc(s.name)}</text>`);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
