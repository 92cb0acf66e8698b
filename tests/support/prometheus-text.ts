/**
 * A strict parser of the Prometheus text exposition format (0.0.4), for tests: every line must be
 * a HELP, TYPE, comment or sample line with valid names, label syntax and values; a family's TYPE
 * comes before its samples, once; a family's samples are contiguous; series are unique; counters
 * are non-negative; histogram buckets are cumulative (non-decreasing in `le`), end with `+Inf`
 * equal to `_count`, and come with `_sum`. Throws naming the line on the first violation.
 */
export type Sample = { name: string; labels: Record<string, string>; value: number };
export type Family = { name: string; type: string; help: string | null; samples: Sample[] };

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count', ''], counter: ['', '_total'], gauge: [''], untyped: [''] };

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  let current: Family | null = null;
  const seen = new Set<string>();
  const typed = new Set<string>();
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, i) => {
    const at = `line ${i + 1}: ${line}`;
    const open = (name: string) => {
      if (current?.name === name) return current;
      if (closed.has(name) || families.has(name) && current?.name !== name) throw new Error(`${at}: family ${name} is not contiguous`);
      if (current) closed.add(current.name);
      current = families.get(name) ?? { name, type: 'untyped', help: null, samples: [] };
      families.set(name, current);
      return current;
    };
    if (line.trim() === '') return; // the format ignores blank lines (prom-client separates families with them)
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`${at}: bad metric name`);
      const f = open(name);
      if (kind === 'HELP') {
        if (f.help !== null) throw new Error(`${at}: second HELP`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`${at}: bad escape in HELP`);
        f.help = rest;
      } else {
        if (!TYPES.has(rest)) throw new Error(`${at}: unknown type`);
        if (f.samples.length) throw new Error(`${at}: TYPE after samples`);
        if (typed.has(name)) throw new Error(`${at}: second TYPE`);
        typed.add(name);
        f.type = rest;
      }
      return;
    }
    if (line.startsWith('#')) return;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`${at}: not a sample line`);
    const [, name, , body, raw] = m as unknown as [string, string, string | undefined, string | undefined, string];
    const labels = parseLabels(body ?? '', at);
    const value = parseValue(raw, at);
    const family = familyOf(name, current, at);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`${at}: duplicate series`);
    seen.add(key);
    if (family.type === 'counter' && value < 0) throw new Error(`${at}: negative counter`);
    family.samples.push({ name, labels, value });
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function familyOf(sample: string, current: Family | null, at: string): Family {
  if (!current) throw new Error(`${at}: sample without a family`);
  const suffix = sample.startsWith(current.name) ? sample.slice(current.name.length) : null;
  if (suffix === null || !(SUFFIXES[current.type] ?? ['']).includes(suffix)) throw new Error(`${at}: sample does not belong to family ${current.name} (${current.type})`);
  return current;
}

function parseLabels(body: string, at: string): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = body;
  while (rest.length) {
    const m = /^([^=]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
    if (!m) throw new Error(`${at}: bad label syntax near ${rest}`);
    const [all, name, raw] = m as unknown as [string, string, string];
    if (!LABEL.test(name) || name.startsWith('__')) throw new Error(`${at}: bad label name ${name}`);
    if (name in out) throw new Error(`${at}: label ${name} twice`);
    out[name] = raw.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(all.length);
  }
  return out;
}

function parseValue(raw: string, at: string): number {
  if (raw === '+Inf') return Infinity;
  if (raw === '-Inf') return -Infinity;
  if (raw === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new Error(`${at}: bad value ${raw}`);
  return Number(raw);
}

function checkHistogram(f: Family): void {
  const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const h = series.get(key) ?? { buckets: [] };
    series.set(key, h);
    if (s.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${f.name}: bucket without le`);
      h.buckets.push([parseValue(le, `${f.name} le`), s.value]);
    } else if (s.name.endsWith('_sum')) h.sum = s.value;
    else h.count = s.value;
  }
  for (const [key, h] of series) {
    const where = `${f.name}${key}`;
    if (h.sum === undefined || h.count === undefined) throw new Error(`${where}: _sum and _count required`);
    const sorted = [...h.buckets].sort((a, b) => a[0] - b[0]);
    if (sorted.at(-1)?.[0] !== Infinity) throw new Error(`${where}: no +Inf bucket`);
    sorted.forEach(([, v], i) => { if (i && v < sorted[i - 1]![1]) throw new Error(`${where}: buckets not cumulative`); });
    if (sorted.at(-1)![1] !== h.count) throw new Error(`${where}: +Inf bucket differs from _count`);
  }
}

/** Sum of a family's samples named `sample` whose labels include `match`. */
export function sampleValue(families: Map<string, Family>, family: string, match: Record<string, string> = {}, sample = family): number {
  const f = families.get(family);
  if (!f) return 0;
  return f.samples.filter((s) => s.name === sample && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}
