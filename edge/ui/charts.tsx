/**
 * Server-rendered SVG charts (no client-side JavaScript): a bar chart for daily amounts and a line
 * chart for rates and measures. Missing values leave gaps instead of pretending to be zero. Every
 * chart has a title and a text description for screen readers, and per-point `<title>` tooltips.
 */
import type { FC } from 'hono/jsx';

const W = 640;
const H = 220;
const PAD = { left: 52, right: 14, top: 14, bottom: 30 };
const PLOT_W = W - PAD.left - PAD.right;
const PLOT_H = H - PAD.top - PAD.bottom;

export interface Series {
  name: string;
  /** CSS colour. */
  color: string;
  values: (number | null)[];
}

interface ChartProps {
  id: string;
  title: string;
  /** Dates (YYYY-MM-DD) along the x axis, one per value. */
  days: string[];
  /** Formats a y value for axis labels and tooltips. */
  format: (v: number) => string;
  /** Fixed upper bound of the y axis (e.g. 100 for percentages); by default a round number above the data. */
  yMax?: number;
}

/** A round upper bound ≥ v whose quarters (the grid lines) are round too: 4 × (1, 2, 2.5, 3, 4, 5, 6, 8 × 10^k). */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const step = v / 4;
  const mag = 10 ** Math.floor(Math.log10(step));
  return ([1, 2, 2.5, 3, 4, 5, 6, 8, 10].find((m) => m * mag >= step) ?? 10) * mag * 4;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const dayLabel = (d: string) => `${Number(d.slice(8))} ${MONTHS[Number(d.slice(5, 7)) - 1]}`;
const x = (i: number, n: number) => PAD.left + ((i + 0.5) * PLOT_W) / n;
const y = (v: number, max: number) => PAD.top + PLOT_H - (Math.min(v, max) / max) * PLOT_H;
const r1 = (v: number) => Math.round(v * 10) / 10;

const Axes: FC<{ days: string[]; max: number; format: (v: number) => string }> = ({ days, max, format }) => {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
  const every = Math.max(1, Math.ceil(days.length / 8));
  return (
    <g class="axes">
      {ticks.map((t) => (
        <g>
          <line class="grid" x1={PAD.left} x2={W - PAD.right} y1={r1(y(t, max))} y2={r1(y(t, max))} />
          <text class="ylabel" x={PAD.left - 6} y={r1(y(t, max)) + 4} text-anchor="end">{format(t)}</text>
        </g>
      ))}
      {days.map((d, i) => (i % every === 0 ? <text class="xlabel" x={r1(x(i, days.length))} y={H - 10} text-anchor="middle">{dayLabel(d)}</text> : null))}
    </g>
  );
};

const Frame: FC<{ id: string; title: string; desc: string; legend?: Series[]; children?: unknown }> = ({ id, title, desc, legend, children }) => (
  <figure class="chart">
    <figcaption id={`${id}-title`}>{title}</figcaption>
    <svg id={id} class="chart-svg" viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={`${id}-title ${id}-desc`} xmlns="http://www.w3.org/2000/svg">
      <desc id={`${id}-desc`}>{desc}</desc>
      {children}
    </svg>
    {legend && legend.length > 1 ? (
      <ul class="legend">{legend.map((s) => <li><i style={`background:${s.color}`} />{s.name}</li>)}</ul>
    ) : null}
  </figure>
);

const describe = (days: string[], series: Series[], format: (v: number) => string) =>
  series.map((s) => {
    const present = s.values.filter((v): v is number => v !== null);
    return present.length === 0 ? `${s.name}: no data` : `${s.name}: ${present.length} of ${days.length} days, from ${format(Math.min(...present))} to ${format(Math.max(...present))}`;
  }).join('; ');

/** One bar per day. */
export const BarChart: FC<ChartProps & { series: Series }> = ({ id, title, days, series, format, yMax }) => {
  const max = yMax ?? niceMax(Math.max(0, ...series.values.map((v) => v ?? 0)));
  const band = PLOT_W / Math.max(1, days.length);
  const width = Math.max(1, band * 0.7);
  return (
    <Frame id={id} title={title} desc={describe(days, [series], format)}>
      <Axes days={days} max={max} format={format} />
      {series.values.map((v, i) => v === null || v <= 0 ? null : (
        <rect class="bar" x={r1(x(i, days.length) - width / 2)} y={r1(y(v, max))} width={r1(width)} height={r1(PAD.top + PLOT_H - y(v, max))} fill={series.color}>
          <title>{`${dayLabel(days[i]!)}: ${format(v)}`}</title>
        </rect>
      ))}
    </Frame>
  );
};

/** One line per series; a missing value breaks the line. */
export const LineChart: FC<ChartProps & { series: Series[] }> = ({ id, title, days, series, format, yMax }) => {
  const max = yMax ?? niceMax(Math.max(0, ...series.flatMap((s) => s.values.map((v) => v ?? 0))));
  const n = days.length;
  const path = (values: (number | null)[]) =>
    values.map((v, i) => (v === null ? '' : `${i === 0 || values[i - 1] === null ? 'M' : 'L'}${r1(x(i, n))},${r1(y(v, max))}`)).join('');
  return (
    <Frame id={id} title={title} desc={describe(days, series, format)} legend={series}>
      <Axes days={days} max={max} format={format} />
      {series.map((s) => (
        <g class="series" data-series={s.name}>
          <path class="line" d={path(s.values)} fill="none" stroke={s.color} stroke-width="2" />
          {s.values.map((v, i) => (v === null ? null : (
            <circle class="point" cx={r1(x(i, n))} cy={r1(y(v, max))} r={n > 40 ? 1.5 : 2.5} fill={s.color}>
              <title>{`${dayLabel(days[i]!)} · ${s.name}: ${format(v)}`}</title>
            </circle>
          )))}
        </g>
      ))}
    </Frame>
  );
};
