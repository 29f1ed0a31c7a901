/**
 * Draws the dashboard as Grafana's dark theme would, from series already fetched from
 * Prometheus: one self-contained HTML page of inline SVG (no script, no network), laid out by
 * each panel's gridPos. Handles what grafana/kube-crl-proxy.json uses: rows, stat, time series
 * (lines, bars, stacking), state timelines and horizontal bar gauges, with Grafana's unit
 * formats.
 */
import type { Dashboard, FieldOverride, Panel, ThresholdStep, ValueMapping } from './dashboard.js';

export interface Series {
  readonly name: string;
  /** [unix seconds, value or null for a gap] */
  readonly points: readonly (readonly [number, number | null])[];
}

export interface RenderInput {
  readonly dashboard: Dashboard;
  /** Series per panel id, in target then series order. */
  readonly data: ReadonlyMap<number, readonly Series[]>;
  readonly start: number;
  readonly end: number;
  readonly variables: readonly (readonly [string, string])[];
  readonly footer: string;
  readonly width: number;
}

const THEME = {
  canvas: '#111217',
  panel: '#181b1f',
  border: 'rgba(204, 204, 220, 0.12)',
  grid: 'rgba(204, 204, 220, 0.08)',
  text: '#ccccdc',
  weak: 'rgba(204, 204, 220, 0.65)',
  font: "Inter, 'Liberation Sans', 'DejaVu Sans', Helvetica, Arial, sans-serif",
};

/** Grafana's named visualisation colours (dark theme). */
const NAMED: Readonly<Record<string, string>> = {
  green: '#73BF69',
  red: '#F2495C',
  orange: '#FF9830',
  yellow: '#FADE2A',
  blue: '#5794F2',
  purple: '#B877D9',
  'dark-red': '#C4162A',
  text: '#ccccdc',
};

/** Grafana's classic palette, in order. */
const PALETTE = [
  '#7EB26D',
  '#EAB839',
  '#6ED0E0',
  '#EF843C',
  '#E24D42',
  '#1F78C1',
  '#BA43A6',
  '#705DA0',
  '#508642',
  '#CCA300',
];

const CELL_HEIGHT = 30;
const CELL_MARGIN = 8;
const PAGE_PADDING = 16;
const HEADER_HEIGHT = 56;

function color(name: string): string {
  return NAMED[name] ?? name;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// ---------------------------------------------------------------- units, as Grafana prints them

function trimNumber(value: number, decimals: number): string {
  const fixed = value.toFixed(decimals);
  return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
}

function autoDecimals(value: number): number {
  const abs = Math.abs(value);
  if (abs === 0) return 0;
  if (abs >= 100) return 0;
  if (abs >= 10) return 1;
  if (abs >= 1) return 2;
  return Math.min(4, Math.ceil(-Math.log10(abs)) + 1);
}

function scaled(value: number, suffix: string, decimals?: number): string {
  const abs = Math.abs(value);
  const [factor, prefix] =
    abs >= 1e9 ? [1e9, 'B'] : abs >= 1e6 ? [1e6, 'M'] : abs >= 1e3 ? [1e3, 'K'] : [1, ''];
  const v = value / factor;
  return `${trimNumber(v, decimals ?? autoDecimals(v))}${prefix}${suffix}`;
}

/** Grafana's "dtdurations": the two largest units from the first non-zero one. */
function duration(value: number): string {
  const units: [string, number][] = [
    ['year', 31_536_000],
    ['day', 86_400],
    ['hour', 3_600],
    ['minute', 60],
    ['second', 1],
  ];
  let rest = Math.floor(Math.abs(value));
  const first = units.findIndex(([, size]) => rest >= size);
  if (first < 0) return '0 seconds';
  const parts = units.slice(first, first + 2).map(([name, size]) => {
    const count = Math.floor(rest / size);
    rest -= count * size;
    return `${count} ${name}${count === 1 ? '' : 's'}`;
  });
  return (value < 0 ? '-' : '') + parts.join(', ');
}

function seconds(value: number, decimals?: number): string {
  const abs = Math.abs(value);
  if (abs === 0) return '0 s';
  if (abs < 1e-3) return `${trimNumber(value * 1e6, decimals ?? autoDecimals(value * 1e6))} µs`;
  if (abs < 1) return `${trimNumber(value * 1e3, decimals ?? autoDecimals(value * 1e3))} ms`;
  if (abs < 60) return `${trimNumber(value, decimals ?? autoDecimals(value))} s`;
  if (abs < 3600) return `${trimNumber(value / 60, decimals ?? 1)} min`;
  if (abs < 86_400) return `${trimNumber(value / 3600, decimals ?? 1)} hour`;
  return `${trimNumber(value / 86_400, decimals ?? 1)} day`;
}

function bytes(value: number, decimals?: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = value;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${trimNumber(v, decimals ?? autoDecimals(v))} ${units[i]}`;
}

export function formatValue(
  value: number | null,
  unit: string | undefined,
  decimals?: number,
): string {
  if (value === null || Number.isNaN(value)) return 'No data';
  switch (unit) {
    case 'cps':
      return scaled(value, ' c/s', decimals);
    case 'reqps':
      return scaled(value, ' req/s', decimals);
    case 'percentunit':
      return `${trimNumber(value * 100, decimals ?? autoDecimals(value * 100))}%`;
    case 's':
      return seconds(value, decimals);
    case 'dtdurations':
      return duration(value);
    case 'bytes':
      return bytes(value, decimals);
    default:
      return scaled(value, '', decimals);
  }
}

// ---------------------------------------------------------------- colours of fields

function thresholdColor(steps: readonly ThresholdStep[] | undefined, value: number | null): string {
  let chosen = 'green';
  for (const step of steps ?? []) {
    if (step.value === null || (value !== null && value >= step.value)) chosen = step.color;
  }
  return color(chosen);
}

/** Like Grafana, later overrides win over earlier ones. */
function overrideColor(overrides: readonly FieldOverride[], name: string): string | null {
  for (const o of [...overrides].reverse()) {
    const options = o.matcher.options;
    const matches =
      o.matcher.id === 'byName'
        ? options === name
        : o.matcher.id === 'byRegexp' && new RegExp(options.replace(/^\/(.*)\/$/, '$1')).test(name);
    if (!matches) continue;
    for (const p of o.properties) {
      const fixed = (p.value as { fixedColor?: string } | null)?.fixedColor;
      if (p.id === 'color' && fixed !== undefined) return color(fixed);
    }
  }
  return null;
}

function seriesColors(panel: Panel, series: readonly Series[]): string[] {
  let next = 0;
  return series.map(
    (s) =>
      overrideColor(panel.fieldConfig?.overrides ?? [], s.name) ??
      (PALETTE[next++ % PALETTE.length] as string),
  );
}

/** The text and colour a "value" mapping gives `value`, if any. */
function mapped(
  mappings: readonly ValueMapping[] | undefined,
  value: number | null,
): { text?: string; color?: string } | null {
  if (value === null) return null;
  for (const m of mappings ?? []) {
    const hit = m.type === 'value' ? m.options[String(value)] : undefined;
    if (hit !== undefined) return hit;
  }
  return null;
}

/** A value's colour: its value mapping's if it has one, else its threshold's. */
function valueColor(
  defaults: NonNullable<Panel['fieldConfig']>['defaults'] | undefined,
  mapping: { color?: string } | null,
  value: number | null,
): string {
  return mapping?.color === undefined
    ? thresholdColor(defaults?.thresholds?.steps, value)
    : color(mapping.color);
}

function lastValue(s: Series | undefined): number | null {
  if (s === undefined) return null;
  for (let i = s.points.length - 1; i >= 0; i--) {
    const v = s.points[i]?.[1];
    if (v !== null && v !== undefined) return v;
  }
  return null;
}

// ---------------------------------------------------------------- axes

function niceStep(range: number, ticks: number): number {
  const raw = range / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * magnitude >= raw) return m * magnitude;
  return 10 * magnitude;
}

function niceStepFor(unit: string | undefined, range: number, ticks: number): number {
  if (unit === 'bytes') {
    const raw = range / ticks;
    const power = 1024 ** Math.max(0, Math.floor(Math.log(raw) / Math.log(1024)));
    return niceStep(raw / power, 1) * power;
  }
  return niceStep(range, ticks);
}

function clock(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().slice(11, 19);
}

// ---------------------------------------------------------------- panels

interface Box {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

/** A panel drawn over the time range `[start, end]`. */
type DrawOverTime = (
  panel: Panel,
  box: Box,
  series: readonly Series[],
  start: number,
  end: number,
) => string;

function text(x: number, y: number, content: string, attrs: string): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${escapeXml(content)}</text>`;
}

function panelFrame(box: Box, title: string): string {
  return (
    `<rect x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" rx="2" fill="${THEME.panel}" stroke="${THEME.border}"/>` +
    text(box.x + 12, box.y + 21, title, `font-size="14" font-weight="500" fill="${THEME.text}"`)
  );
}

const timeSeries: DrawOverTime = (panel, box, series, start, end) => {
  const parts = [panelFrame(box, panel.title)];
  const defaults = panel.fieldConfig?.defaults;
  const unit = defaults?.unit;
  const bars = defaults?.custom?.drawStyle === 'bars';
  const stacked = defaults?.custom?.stacking?.mode === 'normal';
  const fillOpacity = (defaults?.custom?.fillOpacity ?? 0) / 100;
  const colors = seriesColors(panel, series);

  // Legend rows first: the plot gets what is left.
  const legendItems = series.map((s, i) => ({
    name: s.name,
    color: colors[i] as string,
    width: 22 + s.name.length * 7,
  }));
  const legendRows: (typeof legendItems)[] = [[]];
  let rowWidth = 0;
  for (const item of legendItems) {
    if (rowWidth + item.width > box.w - 24 && (legendRows.at(-1)?.length ?? 0) > 0) {
      legendRows.push([]);
      rowWidth = 0;
    }
    legendRows.at(-1)?.push(item);
    rowWidth += item.width + 12;
  }
  const legendHeight = legendRows.length * 18 + 6;
  const plot: Box = {
    x: box.x + 62,
    y: box.y + 36,
    w: box.w - 62 - 14,
    h: box.h - 36 - 22 - legendHeight,
  };

  // Stack per timestamp when asked.
  const times = [...new Set(series.flatMap((s) => s.points.map(([t]) => t)))].sort((a, b) => a - b);
  const base = new Map<number, number>();
  const drawn = series.map((s) => {
    const points = s.points.map(([t, v]): [number, number | null, number] => {
      const below = stacked ? (base.get(t) ?? 0) : 0;
      const top = v === null ? null : below + v;
      if (stacked && v !== null) base.set(t, below + v);
      return [t, top, below];
    });
    return points;
  });
  const values = drawn.flatMap((pts) => pts.flatMap(([, v, b]) => (v === null ? [] : [v, b])));
  let min = defaults?.min ?? Math.min(0, ...values);
  if (values.length > 0) min = Math.min(min, ...values);
  let max = Math.max(...values, min + 1e-9);
  if (max <= min) max = min + 1;
  const step = niceStepFor(unit, max - min, 4);
  max = Math.ceil((max * 1.05) / step) * step;
  min = Math.floor(min / step) * step;
  const xOf = (t: number) => plot.x + ((t - start) / (end - start)) * plot.w;
  const yOf = (v: number) => plot.y + plot.h - ((v - min) / (max - min)) * plot.h;

  for (let v = min; v <= max + step / 2; v += step) {
    const y = yOf(v);
    parts.push(
      `<line x1="${plot.x}" x2="${plot.x + plot.w}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${THEME.grid}"/>`,
    );
    parts.push(
      text(
        plot.x - 8,
        y + 4,
        formatValue(v, unit, autoDecimals(step)),
        `font-size="11" fill="${THEME.weak}" text-anchor="end"`,
      ),
    );
  }
  parts.push(timeAxis(plot, start, end, true));

  const slot =
    times.length > 1
      ? (plot.w * ((times.at(-1) as number) - (times[0] as number))) /
        (end - start) /
        (times.length - 1)
      : 8;
  drawn.forEach((points, i) => {
    const c = colors[i] as string;
    if (bars) {
      const width = Math.max(1.5, slot * 0.7);
      for (const [t, v, b] of points) {
        if (v === null || v === b) continue;
        const y0 = yOf(b);
        const y1 = yOf(v);
        parts.push(
          `<rect x="${(xOf(t) - width / 2).toFixed(1)}" y="${Math.min(y0, y1).toFixed(1)}" width="${width.toFixed(1)}" height="${Math.abs(y0 - y1).toFixed(1)}" fill="${c}" fill-opacity="${Math.max(fillOpacity, 0.5)}"/>`,
        );
      }
      return;
    }
    // One path per run of non-null points.
    let run: [number, number, number][] = [];
    const flush = () => {
      if (run.length === 0) return;
      const line = run.map(([t, v]) => `${xOf(t).toFixed(1)},${yOf(v).toFixed(1)}`).join(' ');
      if (fillOpacity > 0) {
        const back = [...run]
          .reverse()
          .map(([t, , b]) => `${xOf(t).toFixed(1)},${yOf(b).toFixed(1)}`)
          .join(' ');
        parts.push(
          `<polygon points="${line} ${back}" fill="${c}" fill-opacity="${fillOpacity}" stroke="none"/>`,
        );
      }
      parts.push(
        `<polyline points="${line}" fill="none" stroke="${c}" stroke-width="1.5" stroke-linejoin="round"/>`,
      );
      run = [];
    };
    for (const [t, v, b] of points) {
      if (v === null) flush();
      else run.push([t, v, b]);
    }
    flush();
  });

  let ly = plot.y + plot.h + 26;
  for (const row of legendRows) {
    let lx = box.x + 12;
    for (const item of row) {
      parts.push(
        `<rect x="${lx}" y="${ly + 4}" width="14" height="4" rx="1" fill="${item.color}"/>`,
      );
      parts.push(text(lx + 20, ly + 10, item.name, `font-size="12" fill="${THEME.text}"`));
      lx += item.width + 12;
    }
    ly += 18;
  }
  return parts.join('');
};

const stat: DrawOverTime = (panel, box, series, start, end) => {
  const parts = [panelFrame(box, panel.title)];
  const defaults = panel.fieldConfig?.defaults;
  const s = series[0];
  const value = lastValue(s);
  const mapping = mapped(defaults?.mappings, value);
  const c = valueColor(defaults, mapping, value);
  if (panel.options?.graphMode !== 'none' && s !== undefined && s.points.length > 1) {
    const values = s.points.flatMap(([, v]) => (v === null ? [] : [v]));
    const lo = Math.min(0, ...values);
    const hi = Math.max(...values, lo + 1e-9);
    const area: Box = { x: box.x + 1, y: box.y + box.h * 0.55, w: box.w - 2, h: box.h * 0.45 - 1 };
    const xy = s.points
      .filter(([, v]) => v !== null)
      .map(
        ([t, v]) =>
          `${(area.x + ((t - start) / (end - start)) * area.w).toFixed(1)},${(area.y + area.h - (((v as number) - lo) / (hi - lo)) * area.h).toFixed(1)}`,
      );
    if (xy.length > 1) {
      const first = xy[0]?.split(',')[0];
      const last = xy.at(-1)?.split(',')[0];
      parts.push(
        `<polygon points="${first},${area.y + area.h} ${xy.join(' ')} ${last},${area.y + area.h}" fill="${c}" fill-opacity="0.18"/>`,
      );
      parts.push(
        `<polyline points="${xy.join(' ')}" fill="none" stroke="${c}" stroke-opacity="0.7" stroke-width="1.2"/>`,
      );
    }
  }
  const label = mapping?.text ?? formatValue(value, defaults?.unit, defaults?.decimals);
  const size = Math.min(34, (box.w - 20) / (label.length * 0.58), box.h * 0.36);
  parts.push(
    text(
      box.x + box.w / 2,
      box.y + 36 + (box.h - 36) * 0.42,
      label,
      `font-size="${size.toFixed(1)}" font-weight="500" fill="${c}" text-anchor="middle" dominant-baseline="middle"`,
    ),
  );
  return parts.join('');
};

function barGauge(panel: Panel, box: Box, series: readonly Series[]): string {
  const parts = [panelFrame(box, panel.title)];
  const defaults = panel.fieldConfig?.defaults;
  const rows = [...series];
  const values = rows.map((s) => lastValue(s));
  const min = defaults?.min ?? 0;
  const max = defaults?.max ?? Math.max(...values.map((v) => v ?? 0), min + 1);
  const top = box.y + 36;
  const available = box.h - 36 - 10;
  const each = Math.min(56, available / Math.max(1, rows.length));
  const valueWidth = Math.min(150, box.w * 0.36);
  rows.forEach((s, i) => {
    const value = values[i] ?? null;
    const c = thresholdColor(defaults?.thresholds?.steps, value);
    const y = top + i * each;
    parts.push(text(box.x + 12, y + 13, s.name, `font-size="12" fill="${THEME.text}"`));
    const bar: Box = {
      x: box.x + 12,
      y: y + 19,
      w: box.w - 24 - valueWidth,
      h: Math.max(10, each - 28),
    };
    const fraction = value === null ? 0 : Math.max(0, Math.min(1, (value - min) / (max - min)));
    const id = `g${panel.id}-${i}`;
    parts.push(
      `<defs><linearGradient id="${id}" x1="0" x2="1"><stop offset="0" stop-color="${c}" stop-opacity="0.35"/><stop offset="1" stop-color="${c}"/></linearGradient></defs>`,
    );
    parts.push(
      `<rect x="${bar.x}" y="${bar.y.toFixed(1)}" width="${bar.w}" height="${bar.h.toFixed(1)}" rx="2" fill="rgba(204,204,220,0.07)"/>`,
    );
    if (fraction > 0) {
      parts.push(
        `<rect x="${bar.x}" y="${bar.y.toFixed(1)}" width="${(bar.w * fraction).toFixed(1)}" height="${bar.h.toFixed(1)}" rx="2" fill="url(#${id})"/>`,
      );
    }
    const label = formatValue(value, defaults?.unit, defaults?.decimals);
    const size = Math.min(18, valueWidth / (label.length * 0.6));
    parts.push(
      text(
        box.x + box.w - 12,
        bar.y + bar.h / 2,
        label,
        `font-size="${size.toFixed(1)}" font-weight="500" fill="${c}" text-anchor="end" dominant-baseline="middle"`,
      ),
    );
  });
  return parts.join('');
}

/** Time ticks under a plot, as in timeSeries. */
function timeAxis(plot: Box, start: number, end: number, grid: boolean): string {
  const parts: string[] = [];
  const tickEvery = niceStep(end - start, 6);
  for (let t = Math.ceil(start / tickEvery) * tickEvery; t <= end; t += tickEvery) {
    const x = plot.x + ((t - start) / (end - start)) * plot.w;
    if (grid) {
      parts.push(
        `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${plot.y}" y2="${plot.y + plot.h}" stroke="${THEME.grid}"/>`,
      );
    }
    parts.push(
      text(
        x,
        plot.y + plot.h + 15,
        clock(t),
        `font-size="11" fill="${THEME.weak}" text-anchor="middle"`,
      ),
    );
  }
  return parts.join('');
}

/**
 * Grafana's state timeline: one lane per series, runs of equal values merged into one bar in
 * the colour (and with the text) of their value mapping, or of the thresholds.
 */
const stateTimeline: DrawOverTime = (panel, box, series, start, end) => {
  const parts = [panelFrame(box, panel.title)];
  const defaults = panel.fieldConfig?.defaults;
  const labelWidth = 12 + Math.max(40, ...series.map((s) => s.name.length * 7.2));
  const plot: Box = {
    x: box.x + 12 + labelWidth,
    y: box.y + 36,
    w: box.w - 24 - labelWidth,
    h: box.h - 36 - 26,
  };
  const xOf = (t: number) => plot.x + ((t - start) / (end - start)) * plot.w;
  const lane = plot.h / Math.max(1, series.length);
  const barHeight = lane * 0.8;
  series.forEach((s, i) => {
    const y = plot.y + i * lane + (lane - barHeight) / 2;
    parts.push(
      text(
        plot.x - 10,
        y + barHeight / 2 + 4,
        s.name,
        `font-size="12" fill="${THEME.text}" text-anchor="end"`,
      ),
    );
    const runs: { from: number; to: number; value: number }[] = [];
    s.points.forEach(([t, v], k) => {
      const next = s.points[k + 1]?.[0] ?? end;
      if (v === null) return;
      const last = runs.at(-1);
      if (last !== undefined && last.value === v && last.to === t) last.to = next;
      else runs.push({ from: t, to: next, value: v });
    });
    for (const run of runs) {
      const mapping = mapped(defaults?.mappings, run.value);
      const c = valueColor(defaults, mapping, run.value);
      const x0 = xOf(run.from);
      const width = Math.max(1.5, xOf(run.to) - x0);
      parts.push(
        `<rect x="${x0.toFixed(1)}" y="${y.toFixed(1)}" width="${width.toFixed(1)}" height="${barHeight.toFixed(1)}" fill="${c}" fill-opacity="0.75" stroke="${THEME.panel}" stroke-width="1"/>`,
      );
      const label = mapping?.text ?? formatValue(run.value, defaults?.unit, defaults?.decimals);
      if (width > label.length * 7 + 12) {
        parts.push(text(x0 + 6, y + barHeight / 2 + 4, label, `font-size="12" fill="#111217"`));
      }
    }
  });
  parts.push(timeAxis(plot, start, end, false));
  return parts.join('');
};

function row(panel: Panel, box: Box): string {
  return (
    text(box.x + 2, box.y + 20, '⌄', `font-size="14" fill="${THEME.weak}"`) +
    text(
      box.x + 20,
      box.y + 20,
      panel.title,
      `font-size="16" font-weight="500" fill="${THEME.text}"`,
    )
  );
}

/** The page: a header like Grafana's (title, variables, time range) and the panels. */
export function renderHtml(input: RenderInput): string {
  const { dashboard, width } = input;
  const column = (width - 2 * PAGE_PADDING + CELL_MARGIN) / 24;
  const boxOf = (p: Panel): Box => ({
    x: PAGE_PADDING + p.gridPos.x * column,
    y: HEADER_HEIGHT + p.gridPos.y * (CELL_HEIGHT + CELL_MARGIN),
    w: p.gridPos.w * column - CELL_MARGIN,
    h: p.gridPos.h * (CELL_HEIGHT + CELL_MARGIN) - CELL_MARGIN,
  });
  const bottom = Math.max(...dashboard.panels.map((p) => p.gridPos.y + p.gridPos.h));
  const height = HEADER_HEIGHT + bottom * (CELL_HEIGHT + CELL_MARGIN) + 30;
  const parts: string[] = [];
  parts.push(
    text(
      PAGE_PADDING,
      34,
      `Dashboards › ${dashboard.title}`,
      `font-size="20" font-weight="500" fill="${THEME.text}"`,
    ),
  );
  let vx = PAGE_PADDING + 330;
  for (const [name, value] of input.variables) {
    const w = 16 + (name.length + value.length) * 7.2 + 20;
    parts.push(
      `<rect x="${vx}" y="14" width="${w}" height="30" rx="2" fill="${THEME.panel}" stroke="${THEME.border}"/>`,
    );
    parts.push(text(vx + 10, 34, name, `font-size="13" fill="${THEME.weak}"`));
    parts.push(text(vx + 16 + name.length * 7.2, 34, value, `font-size="13" fill="${THEME.text}"`));
    vx += w + 8;
  }
  const range = `${clock(input.start)} to ${clock(input.end)} UTC`;
  parts.push(
    text(width - PAGE_PADDING, 34, range, `font-size="13" fill="${THEME.text}" text-anchor="end"`),
  );
  for (const panel of dashboard.panels) {
    const box = boxOf(panel);
    const series = input.data.get(panel.id) ?? [];
    if (panel.type === 'row') parts.push(row(panel, box));
    else if (panel.type === 'stat') parts.push(stat(panel, box, series, input.start, input.end));
    else if (panel.type === 'bargauge') parts.push(barGauge(panel, box, series));
    else if (panel.type === 'state-timeline')
      parts.push(stateTimeline(panel, box, series, input.start, input.end));
    else parts.push(timeSeries(panel, box, series, input.start, input.end));
  }
  parts.push(text(PAGE_PADDING, height - 10, input.footer, `font-size="11" fill="${THEME.weak}"`));
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${THEME.font}">${parts.join('\n')}</svg>`;
  return `<!doctype html><html><head><meta charset="utf-8"><style>html,body{margin:0;background:${THEME.canvas}}</style></head><body>${svg}</body></html>`;
}

/** The page's height for a width (for the screenshot's window size). */
export function pageHeight(dashboard: Dashboard): number {
  const bottom = Math.max(...dashboard.panels.map((p) => p.gridPos.y + p.gridPos.h));
  return HEADER_HEIGHT + bottom * (CELL_HEIGHT + CELL_MARGIN) + 30;
}
