/**
 * A worker's metrics on prom-client: the platform's shared definitions (shared/metrics), Node's
 * process metrics, and — registered by {@link addWorkerCollectors} — gauges that read the state of
 * CDC, the bus and the saga when Prometheus scrapes. CDC's own detailed `cdc_*` metrics join the
 * same registry when the worker passes it to `startCdc`.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { createOpsMetrics, type MetricsSource, type OpsMetrics } from '../../shared/metrics/ops-metrics.ts';

export type WorkerMetrics = OpsMetrics & MetricsSource & { readonly registry: Registry };

export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const ops = createOpsMetrics({
    counter: (d) => new Counter({ ...d, registers }),
    histogram: (d) => new Histogram({ ...d, registers }),
  }, 'worker');
  // Same object: the event hub holds it weakly, the worker holds it for /metrics.
  return Object.assign(ops, { registry, contentType: registry.contentType, render: () => registry.metrics() });
}
