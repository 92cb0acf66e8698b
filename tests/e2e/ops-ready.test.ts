/**
 * Metrics and readiness of a real worker and edge (started in this process on the real embedded
 * services): `/metrics` is valid Prometheus exposition behind its token and moves with traffic;
 * `/ready` turns 503 naming PostgreSQL, Redis (KV), the object store or chDB while it is away —
 * the service's process is stopped and started again on its port — and 200 once it is back,
 * while `/health` (liveness) stays 200 throughout.
 *
 * chDB runs inside the worker, so it cannot be stopped on its own. It is made unavailable the way
 * it fails in practice: the one chDB session is held by a long query (the adapter runs one
 * statement at a time), so the readiness check cannot get an answer within its timeout.
 */
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeEdge } from '../../edge/compose.ts';
import { freePort } from '../../infra/dev/free-port.ts';
import { parseEdgeConfig, parseWorkerConfig } from '../../shared/config.ts';
import { startWorker } from '../../workers/worker.ts';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.ts';
import { startOpsStack, type OpsStack } from '../support/ops-stack.ts';
import { eventually } from '../support/saga-stack.ts';

const TOKEN = 'ops-test-metrics-token-1234';
let stack: OpsStack;
let worker: Awaited<ReturnType<typeof startWorker>>;
let workerUrl: string;
let edgeUrl: string;
let edgeServer: ServerType;

beforeAll(async () => {
  stack = await startOpsStack('ops-ready');
  const workerPort = await freePort();
  workerUrl = `http://127.0.0.1:${workerPort}`;
  worker = await startWorker(parseWorkerConfig(stack.workerEnv(workerPort, { LOG_LEVEL: 'silent', METRICS_TOKEN: TOKEN })));
  const edgePort = await freePort();
  edgeUrl = `http://127.0.0.1:${edgePort}`;
  const { app } = composeEdge(parseEdgeConfig(stack.edgeEnv(edgePort, workerUrl, { LOG_LEVEL: 'silent', METRICS_TOKEN: TOKEN })));
  edgeServer = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: edgePort });
}, 240_000);

afterAll(async () => {
  await new Promise<void>((r) => (edgeServer ? edgeServer.close(() => r()) : r()));
  await worker?.stop(5_000);
  await stack?.stop();
}, 120_000);

const scrape = async (base: string) => {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
};
const ready = async (base: string) => {
  const res = await fetch(`${base}/ready`);
  return { status: res.status, body: await res.json() as { status: string; dependencies: Record<string, { ok: boolean; error?: string }> } };
};
const failing = (b: { dependencies: Record<string, { ok: boolean }> }) => Object.entries(b.dependencies).filter(([, d]) => !d.ok).map(([k]) => k).sort();

describe('/metrics', () => {
  it('needs the bearer token', async () => {
    for (const base of [edgeUrl, workerUrl]) {
      expect((await fetch(`${base}/metrics`)).status).toBe(401);
      expect((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status).toBe(401);
    }
  });

  it('is valid exposition on both hosts and its counters move with traffic', async () => {
    const [edgeBefore, workerBefore] = await Promise.all([scrape(edgeUrl), scrape(workerUrl)]);
    for (let i = 0; i < 3; i++) expect((await fetch(`${edgeUrl}/trpc/health.ping`)).status).toBe(200);
    expect((await fetch(`${edgeUrl}/trpc/worker.health`)).status).toBe(200);
    expect((await fetch(`${edgeUrl}/trpc/me.get`)).status).toBe(401);
    expect((await fetch(`${edgeUrl}/no/such/user-4711`)).status).toBe(404);
    const [edge, work] = await Promise.all([scrape(edgeUrl), scrape(workerUrl)]);

    const delta = (after: typeof edge, before: typeof edge, family: string, labels: Record<string, string>, sample = family) =>
      sampleValue(after, family, labels, sample) - sampleValue(before, family, labels, sample);
    expect(delta(edge, edgeBefore, 'bionic_http_requests_total', { service: 'edge', route: '/trpc/*', status: '200' })).toBe(4);
    expect(delta(edge, edgeBefore, 'bionic_http_requests_total', { service: 'edge', route: '(unmatched)', status: '404' })).toBe(1);
    expect(delta(edge, edgeBefore, 'bionic_trpc_procedure_duration_seconds', { procedure: 'health.ping', code: 'OK', type: 'query' }, 'bionic_trpc_procedure_duration_seconds_count')).toBe(3);
    expect(delta(edge, edgeBefore, 'bionic_trpc_errors_total', { procedure: 'me.get', code: 'UNAUTHORIZED' })).toBe(1);
    expect(delta(work, workerBefore, 'bionic_http_requests_total', { service: 'worker', route: '/trpc/*', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(delta(work, workerBefore, 'bionic_trpc_procedure_duration_seconds', { service: 'worker', procedure: 'worker.health', code: 'OK' }, 'bionic_trpc_procedure_duration_seconds_count')).toBe(1);
    // Raw paths never become labels.
    for (const f of [edge, work]) expect(JSON.stringify([...f.values()])).not.toContain('user-4711');

    // The worker's gauges read CDC, the bus and the saga tables; Node's process metrics are there.
    expect(work.get('process_cpu_seconds_total')?.type).toBe('counter');
    expect(work.get('bionic_cdc_lag_seconds')?.samples[0]?.labels).toEqual({ slot: expect.any(String) });
    expect(work.get('bionic_cdc_retained_wal_bytes')?.samples.length).toBe(1);
    expect(work.get('bionic_bus_consumer_lag')?.samples.map((s) => s.labels.group)).toEqual(expect.arrayContaining(['saga-orchestrator']));
    expect(sampleValue(work, 'bionic_saga_stuck', { state: 'DRAFT' })).toBe(0);
    expect(work.get('cdc_transactions_total')?.type).toBe('counter');
  });
});

describe('/ready', () => {
  it('is 200 with every dependency; the worker checks the databases, chDB, KV, the object store and the bus', async () => {
    const w = await ready(workerUrl);
    expect(w.status, JSON.stringify(w.body)).toBe(200);
    expect(Object.keys(w.body.dependencies).sort()).toEqual(['bus', 'crm', 'kv', 'objectStore', 'olap', 'platform', 'telemetry']);
    const e = await ready(edgeUrl);
    expect(e.status, JSON.stringify(e.body)).toBe(200);
    expect(Object.keys(e.body.dependencies).sort()).toEqual(['kv', 'objectStore', 'worker']);
  });

  const back = async () => {
    await eventually(async () => (await ready(workerUrl)).status === 200 && (await ready(edgeUrl)).status === 200, 'both hosts to be ready again', 90_000, 250);
  };

  it('turns 503 naming KV while redis-server is stopped, and 200 once it is back; /health stays 200', async () => {
    await stack.down('redis');
    const w = await ready(workerUrl);
    expect(w.status).toBe(503);
    expect(failing(w.body)).toEqual(['kv']);
    const e = await ready(edgeUrl);
    expect(e.status).toBe(503);
    expect(failing(e.body)).toEqual(['kv', 'worker']);
    expect(e.body.dependencies.worker?.error).toMatch(/worker \/ready answered 503/);
    expect((await fetch(`${workerUrl}/health`)).status).toBe(200);
    expect((await fetch(`${edgeUrl}/health`)).status).toBe(200);
    await stack.up('redis');
    await back();
  });

  it('turns 503 naming the object store while s3rver is stopped', async () => {
    await stack.down('s3');
    const w = await ready(workerUrl);
    expect(w.status).toBe(503);
    expect(failing(w.body)).toEqual(['objectStore']);
    expect(failing((await ready(edgeUrl)).body)).toEqual(['objectStore', 'worker']);
    await stack.up('s3');
    await back();
  });

  it('turns 503 naming the databases and the bus while PostgreSQL is stopped', async () => {
    await stack.down('postgres');
    const w = await ready(workerUrl);
    expect(w.status).toBe(503);
    expect(failing(w.body)).toEqual(['bus', 'crm', 'platform', 'telemetry']);
    expect(failing((await ready(edgeUrl)).body)).toEqual(['worker']);
    await stack.up('postgres');
    await back();
  }, 180_000);

  it('turns 503 naming chDB while its session cannot answer in time', async () => {
    // ~4 s of work on the one chDB session; the readiness check times out after 2 s.
    const busy = worker.olap.query('SELECT sleepEachRow(0.1) FROM numbers(40) SETTINGS function_sleep_max_microseconds_per_block = 10000000, max_block_size = 100');
    const w = await ready(workerUrl);
    expect(w.status).toBe(503);
    expect(failing(w.body)).toEqual(['olap']);
    expect(w.body.dependencies.olap?.error).toMatch(/timed out/);
    await busy;
    await back();
  });
});
