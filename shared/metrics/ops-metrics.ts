/**
 * The platform's own metrics, defined once (names are a contract with the Grafana dashboard and
 * the alert rules: see README "Operations") and built on whichever registry the host runs — the
 * Web-only one in ./registry.ts on the edge, prom-client on the workers. Labels are bounded:
 * route templates and procedure paths, never user ids.
 */
import { Counter, DEFAULT_BUCKETS, Histogram, PROMETHEUS_CONTENT_TYPE, Registry, type Labels } from './registry.ts';
import { observeOpsEvents, type OpsEvents } from './events.ts';

/** prom-client's shape; `labels()` resolves a label set once for a hot path. */
export interface CounterLike { inc(labels: Labels, value?: number): void; labels(labels: Labels): { inc(value?: number): void } }
export interface HistogramLike { observe(labels: Labels, value: number): void; labels(labels: Labels): { observe(value: number): void } }
interface Definition { name: string; help: string; labelNames: string[] }

/** Builds instruments on a registry (prom-client's classes fit this shape as they are). */
export interface MetricFactory {
  counter(d: Definition): CounterLike;
  histogram(d: Definition & { buckets: number[] }): HistogramLike;
}

export type Service = 'edge' | 'worker';
export interface HttpObservation { method: string; route: string; status: number; seconds: number }
export interface ProcedureObservation { path: string; type: string; code: string; seconds: number }

/** What the tRPC middleware needs (router/trpc.ts); hosts put it into the context. */
export interface ProcedureMetrics { procedure(o: ProcedureObservation): void }

export interface OpsMetrics extends OpsEvents, ProcedureMetrics {
  readonly service: Service;
  http(o: HttpObservation): void;
}

/** A registry that can answer a scrape. */
export interface MetricsSource { readonly contentType: string; render(): Promise<string> }

const ETL_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

/** Defines every event and request metric on `factory` for `service`, and attaches it to the event hub. */
export function createOpsMetrics(factory: MetricFactory, service: Service): OpsMetrics {
  const m = {
    httpRequests: factory.counter({ name: 'bionic_http_requests_total', help: 'HTTP requests answered, by route template and status', labelNames: ['service', 'method', 'route', 'status'] }),
    httpSeconds: factory.histogram({ name: 'bionic_http_request_duration_seconds', help: 'Time to the response headers, by route template and status', labelNames: ['service', 'method', 'route', 'status'], buckets: DEFAULT_BUCKETS }),
    trpcSeconds: factory.histogram({ name: 'bionic_trpc_procedure_duration_seconds', help: 'tRPC procedure duration, by procedure, type and result code (OK or the tRPC error code)', labelNames: ['service', 'procedure', 'type', 'code'], buckets: DEFAULT_BUCKETS }),
    trpcErrors: factory.counter({ name: 'bionic_trpc_errors_total', help: 'tRPC procedure calls that ended in an error, by code', labelNames: ['service', 'procedure', 'code'] }),
    rateLimited: factory.counter({ name: 'bionic_rate_limit_rejections_total', help: 'Requests refused by a rate limiter (429)', labelNames: ['limiter'] }),
    refreshes: factory.counter({ name: 'bionic_session_refreshes_total', help: 'Access-token refreshes at the identity provider', labelNames: ['outcome'] }),
    reportCache: factory.counter({ name: 'bionic_report_cache_total', help: 'Report lookups by where the report was found', labelNames: ['result'] }),
    reportBuilds: factory.counter({ name: 'bionic_report_builds_total', help: 'Report builds (on demand at the edge, pre-builds on workers)', labelNames: ['outcome'] }),
    etlSeconds: factory.histogram({ name: 'bionic_etl_run_duration_seconds', help: 'ETL run duration by final status', labelNames: ['region', 'status'], buckets: ETL_BUCKETS }),
    etlRows: factory.counter({ name: 'bionic_etl_rows_total', help: 'Telemetry rows read and statistics rows written by ETL runs', labelNames: ['region', 'direction'] }),
    etlRuns: factory.counter({ name: 'bionic_etl_runs_total', help: 'ETL run attempts by status', labelNames: ['region', 'status'] }),
    sagaTransitions: factory.counter({ name: 'bionic_saga_transitions_total', help: 'Applied order-saga transitions', labelNames: ['from', 'to'] }),
  };
  type HttpSeries = { count: ReturnType<CounterLike['labels']>; time: ReturnType<HistogramLike['labels']> };
  // route → method → status; bounded: routes are templates, methods and statuses few.
  const httpSeries = new Map<string, Map<string, Map<number, HttpSeries>>>();
  // Every report read counts one lookup: its few series are resolved once too.
  const cacheSeries = new Map<string, ReturnType<CounterLike['labels']>>();
  const metrics: OpsMetrics = {
    service,
    http(o) {
      // Every request lands here: its series are resolved once per route, method and status.
      let byMethod = httpSeries.get(o.route);
      if (!byMethod) httpSeries.set(o.route, (byMethod = new Map()));
      let byStatus = byMethod.get(o.method);
      if (!byStatus) byMethod.set(o.method, (byStatus = new Map()));
      let series = byStatus.get(o.status);
      if (!series) {
        const labels = { service, method: o.method, route: o.route, status: String(o.status) };
        byStatus.set(o.status, (series = { count: m.httpRequests.labels(labels), time: m.httpSeconds.labels(labels) }));
      }
      series.count.inc();
      series.time.observe(o.seconds);
    },
    procedure(o) {
      m.trpcSeconds.observe({ service, procedure: o.path, type: o.type, code: o.code }, o.seconds);
      if (o.code !== 'OK') m.trpcErrors.inc({ service, procedure: o.path, code: o.code });
    },
    rateLimitRejected: (limiter) => m.rateLimited.inc({ limiter }),
    sessionRefresh: (outcome) => m.refreshes.inc({ outcome }),
    reportCache(result) {
      let series = cacheSeries.get(result);
      if (!series) cacheSeries.set(result, (series = m.reportCache.labels({ result })));
      series.inc();
    },
    reportBuild: (outcome) => m.reportBuilds.inc({ outcome }),
    etlRun(run) {
      const region = run.region;
      m.etlRuns.inc({ region, status: run.status });
      if (run.seconds !== null) m.etlSeconds.observe({ region, status: run.status }, run.seconds);
      if (run.rowsRead) m.etlRows.inc({ region, direction: 'read' }, run.rowsRead);
      if (run.rowsWritten) m.etlRows.inc({ region, direction: 'written' }, run.rowsWritten);
    },
    sagaTransition: (from, to) => m.sagaTransitions.inc({ from, to }),
  };
  observeOpsEvents(metrics);
  return metrics;
}

/** The edge's metrics on the Web-only registry. */
export function createEdgeMetrics(): OpsMetrics & MetricsSource {
  const registry = new Registry();
  const registers = [registry];
  const ops = createOpsMetrics({
    counter: (d) => new Counter({ ...d, registers }),
    histogram: (d) => new Histogram({ ...d, registers }),
  }, 'edge');
  return Object.assign(ops, { contentType: PROMETHEUS_CONTENT_TYPE, render: () => registry.render() });
}
