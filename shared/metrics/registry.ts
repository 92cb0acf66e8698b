/**
 * A small Prometheus registry on Web APIs only, for the edge (Deno, Node, edge runtimes), where
 * prom-client's Node-only internals cannot go. Same shape as prom-client's instruments
 * (`new Counter({ name, help, labelNames, registers })`, `inc`, `observe`, `set`, `collect`) so
 * shared metric definitions build on either; renders the text exposition format 0.0.4.
 */
export type Labels = Record<string, string | number>;

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricOptions<L extends string = string, M = unknown> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  registers?: Registry[];
  /** Called on the metric before each render (gauges that read state, prom-client style). */
  collect?: (this: M) => void | Promise<void>;
}

export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

abstract class Metric<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  protected readonly series = new Map<string, { labels: Labels; value: number }>();
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  /** The options' `collect`, bound to this metric. */
  readonly collect?: () => void | Promise<void>;

  // `never`: each subclass's constructor types `this` of its collect callback.
  constructor(o: MetricOptions<L, never>) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(o.name)) throw new Error(`invalid metric name: ${o.name}`);
    this.name = o.name;
    this.help = o.help;
    this.labelNames = o.labelNames ?? [];
    const collect = o.collect as ((this: unknown) => void | Promise<void>) | undefined;
    this.collect = collect && (() => collect.call(this));
    for (const r of o.registers ?? []) r.register(this);
  }

  /** Series key: label values in declared order (unknown labels are a programming error). */
  protected keyOf(labels: Partial<Record<L, string | number>> = {}): [string, Labels] {
    for (const k of Object.keys(labels)) if (!this.labelNames.includes(k as L)) throw new Error(`${this.name}: unknown label ${k}`);
    const clean: Labels = {};
    for (const n of this.labelNames) if (labels[n] !== undefined) clean[n] = labels[n]!;
    return [JSON.stringify(this.labelNames.map((n) => clean[n] ?? '')), clean];
  }

  reset(): void { this.series.clear(); }

  abstract lines(): string[];
}

export class Counter<L extends string = string> extends Metric<L> {
  readonly type = 'counter';
  constructor(o: MetricOptions<L, Counter<L>>) { super(o); }
  inc(labels?: Partial<Record<L, string | number>>, value = 1): void {
    if (value < 0) throw new Error(`${this.name}: counters only go up`);
    const [key, clean] = this.keyOf(labels);
    const s = this.series.get(key);
    if (s) s.value += value;
    else this.series.set(key, { labels: clean, value });
  }
  /** The series of `labels`, resolved once (prom-client's `labels()`): for hot paths that count the same labels again and again. */
  labels(labels: Partial<Record<L, string | number>>): { inc(value?: number): void } {
    const [key, clean] = this.keyOf(labels);
    return {
      inc: (value = 1) => {
        if (value < 0) throw new Error(`${this.name}: counters only go up`);
        const s = this.series.get(key);
        if (s) s.value += value;
        else this.series.set(key, { labels: clean, value });
      },
    };
  }
  lines(): string[] { return [...this.series.values()].map((s) => sample(this.name, s.labels, s.value)); }
}

export class Gauge<L extends string = string> extends Metric<L> {
  readonly type = 'gauge';
  constructor(o: MetricOptions<L, Gauge<L>>) { super(o); }
  set(labels: Partial<Record<L, string | number>>, value: number): void {
    const [key, clean] = this.keyOf(labels);
    this.series.set(key, { labels: clean, value });
  }
  lines(): string[] { return [...this.series.values()].map((s) => sample(this.name, s.labels, s.value)); }
}

export class Histogram<L extends string = string> extends Metric<L> {
  readonly type = 'histogram';
  private readonly buckets: number[];
  private readonly hist = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();

  constructor(o: MetricOptions<L, Histogram<L>> & { buckets?: readonly number[] }) {
    super(o);
    this.buckets = [...(o.buckets ?? DEFAULT_BUCKETS)].sort((a, b) => a - b);
  }

  observe(labels: Partial<Record<L, string | number>>, value: number): void {
    const [key, clean] = this.keyOf(labels);
    this.record(key, clean, value);
  }

  /** The series of `labels`, resolved once (prom-client's `labels()`). */
  labels(labels: Partial<Record<L, string | number>>): { observe(value: number): void } {
    const [key, clean] = this.keyOf(labels);
    return { observe: (value) => this.record(key, clean, value) };
  }

  private record(key: string, clean: Labels, value: number): void {
    let h = this.hist.get(key);
    if (!h) this.hist.set(key, (h = { labels: clean, counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    // Per-bucket counts here; cumulated when rendered, as the format wants.
    const { buckets } = this;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]!) { h.counts[i]! += 1; break; }
    }
    h.sum += value;
    h.count += 1;
  }

  override reset(): void { this.hist.clear(); }

  lines(): string[] {
    const out: string[] = [];
    for (const h of this.hist.values()) {
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += h.counts[i]!;
        out.push(sample(`${this.name}_bucket`, { ...h.labels, le: b }, cumulative));
      });
      out.push(sample(`${this.name}_bucket`, { ...h.labels, le: '+Inf' }, h.count));
      out.push(sample(`${this.name}_sum`, h.labels, h.sum));
      out.push(sample(`${this.name}_count`, h.labels, h.count));
    }
    return out;
  }
}

type AnyMetric = Counter | Gauge | Histogram;

export class Registry {
  private readonly metrics = new Map<string, AnyMetric>();
  readonly contentType = PROMETHEUS_CONTENT_TYPE;

  register(m: Metric<string>): void {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} is already registered`);
    this.metrics.set(m.name, m as AnyMetric);
  }

  getSingleMetric(name: string): AnyMetric | undefined { return this.metrics.get(name); }

  /** The text exposition of every metric (collect callbacks run first). */
  async render(): Promise<string> {
    await Promise.all([...this.metrics.values()].map((m) => m.collect?.()));
    const out: string[] = [];
    for (const m of this.metrics.values()) {
      out.push(`# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${m.name} ${m.type}`, ...m.lines());
    }
    return out.join('\n') + '\n';
  }
}

function sample(name: string, labels: Labels, value: number): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
  return `${name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${formatValue(value)}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
