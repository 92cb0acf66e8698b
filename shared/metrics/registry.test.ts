import { describe, expect, it } from 'vitest';
import { Counter as PromCounter, Histogram as PromHistogram, Registry as PromRegistry } from 'prom-client';
import { parsePrometheusText, sampleValue } from '../../tests/support/prometheus-text.ts';
import { opsEvents } from './events.ts';
import { createEdgeMetrics, createOpsMetrics } from './ops-metrics.ts';
import { Counter, Gauge, Histogram, Registry } from './registry.ts';

describe('the Web-only metrics registry', () => {
  it('renders counters, gauges and histograms as valid exposition, escaping label values', async () => {
    const registry = new Registry();
    const c = new Counter({ name: 'x_total', help: 'a "counter"\nwith a \\ backslash', labelNames: ['route'], registers: [registry] });
    const g = new Gauge({ name: 'x_gauge', help: 'g', labelNames: ['slot'], registers: [registry], collect() { this.set({ slot: 'main' }, 42); } });
    const h = new Histogram({ name: 'x_seconds', help: 'h', labelNames: ['code'], buckets: [0.1, 1], registers: [registry] });
    c.inc({ route: '/a"b\\c\nd' });
    c.inc({ route: '/a"b\\c\nd' }, 2);
    for (const v of [0.05, 0.5, 0.5, 3]) h.observe({ code: 'OK' }, v);
    const text = await registry.render();
    const families = parsePrometheusText(text);
    expect(families.get('x_total')?.samples[0]).toEqual({ name: 'x_total', labels: { route: '/a"b\\c\nd' }, value: 3 });
    expect(sampleValue(families, 'x_gauge', { slot: 'main' })).toBe(42);
    expect(families.get('x_seconds')?.samples.map((s) => [s.name, s.labels.le ?? null, s.value])).toEqual([
      ['x_seconds_bucket', '0.1', 1], ['x_seconds_bucket', '1', 3], ['x_seconds_bucket', '+Inf', 4],
      ['x_seconds_sum', null, 4.05], ['x_seconds_count', null, 4],
    ]);
    expect(() => g.set({ nope: 1 } as never, 1)).toThrow(/unknown label/);
    expect(() => c.inc({}, -1)).toThrow(/only go up/);
  });

  it('the strict parser refuses broken exposition', () => {
    const bad = [
      'x 1', // no newline at the end
      '# TYPE x counter\nx{a="1} 1\n', // unterminated label value
      '# TYPE x counter\nx{1a="1"} 1\n', // bad label name
      '# TYPE x counter\nx -1\n', // negative counter
      '# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 2\n', // family not contiguous
      '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n', // not cumulative
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', // no +Inf
      '# TYPE x gauge\nx 1\nx 2\n', // duplicate series
      '# TYPE x gauge\nx one\n', // bad value
    ];
    for (const text of bad) expect(() => parsePrometheusText(text), text).toThrow();
  });

  it('the shared definitions render the same on prom-client and on the edge registry', async () => {
    const prom = new PromRegistry();
    const onProm = createOpsMetrics({ counter: (d) => new PromCounter({ ...d, registers: [prom] }), histogram: (d) => new PromHistogram({ ...d, registers: [prom] }) }, 'worker');
    const onEdge = createEdgeMetrics();
    for (const m of [onProm, onEdge]) {
      m.http({ method: 'GET', route: '/reports/:period', status: 200, seconds: 0.02 });
      m.procedure({ path: 'orders.create', type: 'mutation', code: 'FORBIDDEN', seconds: 0.003 });
    }
    opsEvents.sagaTransition('NONE', 'DRAFT');
    opsEvents.etlRun({ region: 'eu', status: 'succeeded', seconds: 0.7, rowsRead: 1000, rowsWritten: 10 });
    opsEvents.etlRun({ region: 'ru', status: 'failed', seconds: 0.2, rowsRead: 0, rowsWritten: 0 });
    for (const [text, service] of [[await prom.metrics(), 'worker'], [await onEdge.render(), 'edge']] as const) {
      const f = parsePrometheusText(text);
      expect(sampleValue(f, 'bionic_http_requests_total', { service, route: '/reports/:period', status: '200' })).toBe(1);
      expect(sampleValue(f, 'bionic_http_request_duration_seconds', { service }, 'bionic_http_request_duration_seconds_count')).toBe(1);
      expect(sampleValue(f, 'bionic_trpc_errors_total', { procedure: 'orders.create', code: 'FORBIDDEN' })).toBe(1);
      // Events raised anywhere in the process reach every attached registry.
      expect(sampleValue(f, 'bionic_saga_transitions_total', { from: 'NONE', to: 'DRAFT' })).toBeGreaterThanOrEqual(1);
      expect(sampleValue(f, 'bionic_etl_rows_total', { region: 'eu', direction: 'read' })).toBeGreaterThanOrEqual(1000);
      // Each region's job is its own series: one region's failure does not hide behind another's success.
      expect(sampleValue(f, 'bionic_etl_runs_total', { region: 'ru', status: 'failed' })).toBeGreaterThanOrEqual(1);
      expect(sampleValue(f, 'bionic_etl_runs_total', { region: 'eu', status: 'failed' })).toBe(0);
    }
  });
});
