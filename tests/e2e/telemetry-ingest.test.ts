/**
 * Device ingestion end to end in process: the edge app (verifies, validates, forwards) → the
 * worker's ingest routes (verify again, store in one transaction) → embedded PostgreSQL; device
 * revocation in KV through the Upstash-REST gateway.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEdgeApp } from '../../edge/app.ts';
import { revokedKey } from '../../edge/telemetry/accept.ts';
import { createLogger } from '../../shared/log.ts';
import type { ObjectStore } from '../../shared/ports/index.ts';
import type { DeviceMasterKey, TelemetryConfig } from '../../shared/telemetry/config.ts';
import { deriveDeviceKey, signBody } from '../../shared/telemetry/device-auth.ts';
import { ingestRoutes } from '../../workers/telemetry/routes.ts';
import { startEtlStack, type EtlStack } from '../support/etl-stack.ts';

const log = createLogger({ level: 'silent' });
const objectStore = { ping: async () => {} } as unknown as ObjectStore;
const master = (kid: string): DeviceMasterKey => ({ kid, secret: new Uint8Array(randomBytes(32)) });
const k1 = master('k1');
const k2 = master('k2');
// k2 is current; k1 (older devices) still verifies.
const config: TelemetryConfig = { masterKeys: [k2, k1], maxBatchBytes: 4096 };
const CHIP = 'BP-TEST0001';
const now = Date.now();

let stack: EtlStack;
let worker: Hono;
let workerDown = false;
let edge: ReturnType<typeof createEdgeApp>;

beforeAll(async () => {
  stack = await startEtlStack('ingest', { olap: false });
  worker = new Hono();
  worker.route('/internal/telemetry', ingestRoutes({ config, telemetry: stack.telemetry, kv: stack.kv, now: () => now }));
  edge = createEdgeApp({
    kv: stack.kv!, objectStore, log, workerUrl: 'http://worker.test', rateLimits: null, telemetry: config,
    fetch: async (input, init) => {
      if (workerDown) throw new TypeError('fetch failed');
      return worker.request(String(input), init);
    },
  });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

beforeEach(async () => {
  workerDown = false;
  await stack.telemetry.query('TRUNCATE telemetry_events, telemetry_batches');
});

const reading = (i: number, over: Record<string, unknown> = {}) => ({
  ts: new Date(now - 60_000 + i * 100).toISOString(), kind: 'action', action: 'grip', responseMs: 80 + i, batteryPct: 90, gripForceN: 21.5, ...over,
});
const batch = (n = 3, over: Record<string, unknown> = {}) => ({ batchId: randomUUID(), readings: Array.from({ length: n }, (_, i) => reading(i)), ...over });

/** Posts `body` as device `chip` would, signing with `key` (default: the chip's own key under k2). */
async function post(body: unknown, opts: { chip?: string; key?: DeviceMasterKey; signAs?: string; headers?: Record<string, string>; raw?: BodyInit } = {}) {
  const chip = opts.chip ?? CHIP;
  const key = opts.key ?? k2;
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : new TextEncoder().encode(JSON.stringify(body));
  const signature = await signBody(await deriveDeviceKey(key.secret, opts.signAs ?? chip), bytes);
  return edge.request(`/telemetry/v1/devices/${chip}/batches`, {
    method: 'POST', body: opts.raw ?? bytes, ...(opts.raw instanceof ReadableStream ? { duplex: 'half' } : {}),
    headers: { 'content-type': 'application/json', 'x-device-key-id': key.kid, 'x-device-signature': signature, ...opts.headers },
  });
}

const stored = async () => {
  const [row] = await stack.telemetry.query<{ events: string; batches: string }>(
    'SELECT (SELECT count(*) FROM telemetry_events) AS events, (SELECT count(*) FROM telemetry_batches) AS batches');
  return { events: Number(row!.events), batches: Number(row!.batches) };
};

describe('device telemetry ingestion', () => {
  it('stores a signed batch with its events in order, once', async () => {
    const b = batch(3);
    const res = await post(b);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ batchId: b.batchId, chipId: CHIP, events: 3 });
    const rows = await stack.telemetry.query<{ seq: number; response_ms: number; grip_force_n: number; batch_id: string }>(
      'SELECT seq, response_ms, grip_force_n, batch_id FROM telemetry_events ORDER BY seq');
    expect(rows).toEqual([0, 1, 2].map((i) => ({ seq: i, response_ms: 80 + i, grip_force_n: 21.5, batch_id: b.batchId })));
    // A device provisioned under the older key keeps working after rotation.
    expect((await post(batch(1), { key: k1 })).status).toBe(200);
  });

  it('answers a replayed batch id the same and stores nothing twice, even when replays race', async () => {
    const b = batch(5);
    const first = await post(b);
    const firstBody = await first.json();
    const replays = await Promise.all(Array.from({ length: 5 }, () => post(b)));
    for (const res of replays) {
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(firstBody);
      expect(res.headers.get('idempotent-replayed')).toBe('true');
    }
    // Re-serialised with another key order it is the same batch.
    const reordered = { readings: b.readings.map((x) => Object.fromEntries(Object.entries(x).reverse())), batchId: b.batchId };
    expect((await post(reordered)).status).toBe(200);
    expect(await stored()).toEqual({ events: 5, batches: 1 });
    const fresh = batch(4);
    const racing = await Promise.all(Array.from({ length: 4 }, () => post(fresh)));
    expect(racing.map((x) => x.status)).toEqual([200, 200, 200, 200]);
    expect(racing.filter((x) => x.headers.get('idempotent-replayed') === 'true')).toHaveLength(3);
    expect(await stored()).toEqual({ events: 9, batches: 2 });
  });

  it('refuses a used batch id carrying other readings with 409', async () => {
    const b = batch(2);
    await post(b);
    const res = await post({ ...b, readings: [reading(7)] });
    expect(res.status).toBe(409);
    expect((await res.json()).error.code).toBe('CONFLICT');
    // Another device cannot claim it either.
    expect((await post(b, { chip: 'BP-OTHER001' })).status).toBe(409);
    expect(await stored()).toEqual({ events: 2, batches: 1 });
  });

  it('refuses a wrong key, another chip\'s key, an unknown key id or no signature with 401', async () => {
    const cases = [
      await post(batch(), { key: master('k2') }), // right key id, wrong secret
      await post(batch(), { signAs: 'BP-OTHER001' }), // a valid key, of another device
      await post(batch(), { key: master('k9') }),
      await post(batch(), { headers: { 'x-device-signature': '' } }),
      await post(batch(), { headers: { 'x-device-signature': 'sha256=' + '0'.repeat(64) } }),
    ];
    for (const res of cases) {
      expect(res.status).toBe(401);
      expect((await res.json()).error.code).toBe('UNAUTHORIZED');
    }
    // A body changed after signing.
    const b = batch();
    const signed = await post(b, { raw: JSON.stringify({ ...b, readings: [reading(0, { responseMs: 1 })] }) });
    expect(signed.status).toBe(401);
    expect(await stored()).toEqual({ events: 0, batches: 0 });
  });

  it('refuses an oversized batch with 413, declared or streamed', async () => {
    const big = batch(60); // > 4096 bytes
    expect(JSON.stringify(big).length).toBeGreaterThan(config.maxBatchBytes);
    const declared = await post(big);
    expect(declared.status).toBe(413);
    expect((await declared.json()).error.code).toBe('PAYLOAD_TOO_LARGE');
    const bytes = new TextEncoder().encode(JSON.stringify(big));
    const stream = new ReadableStream<Uint8Array>({
      start(c) { for (let i = 0; i < bytes.length; i += 1000) c.enqueue(bytes.slice(i, i + 1000)); c.close(); },
    });
    const streamed = await post(big, { raw: stream, headers: { 'transfer-encoding': 'chunked' } });
    expect(streamed.status).toBe(413);
    expect(await stored()).toEqual({ events: 0, batches: 0 });
  });

  it('refuses malformed readings with 400 naming them, storing none of the batch', async () => {
    const bad = [
      batch(2, { readings: [reading(0), reading(1, { kind: 'error' })] }), // error without a code
      batch(2, { readings: [reading(0), reading(1, { batteryPct: 150 })] }),
      batch(2, { readings: [reading(0), reading(1, { ts: '2026-03-10 11:00' })] }),
      batch(2, { readings: [reading(0), reading(1, { ts: new Date(now + 3_600_000).toISOString() })] }), // from the future
      batch(2, { readings: [reading(0), reading(1, { speed: 3 })] }), // unknown field
      batch(2, { readings: [reading(0), { ts: reading(1).ts, kind: 'status', batteryPct: 50, gripForceN: 3 }] }),
      batch(2, { batchId: 'not-a-uuid' }),
      batch(0),
    ];
    for (const b of bad) {
      const res = await post(b);
      expect(res.status, JSON.stringify(b).slice(0, 120)).toBe(400);
      const body = await res.json();
      expect(body.error.code).toBe('BAD_REQUEST');
    }
    const res = await post(bad[1]);
    expect((await res.json()).error.issues).toEqual([{ path: 'readings.1.batteryPct', message: 'Number must be less than or equal to 100' }]);
    expect((await post('{"batchId": ')).status).toBe(400);
    expect((await post(batch(), { headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect(await stored()).toEqual({ events: 0, batches: 0 });
  });

  it('stores nothing when the database refuses part of a batch', async () => {
    // A constraint the schema does not know about makes the second half of the transaction fail.
    await stack.telemetry.query(`ALTER TABLE telemetry_events ADD CONSTRAINT test_no_explode CHECK (action IS DISTINCT FROM 'explode') NOT VALID`);
    try {
      const res = await post(batch(2, { readings: [reading(0), reading(1, { action: 'explode' })] }));
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('30');
      expect(await stored()).toEqual({ events: 0, batches: 0 });
    } finally {
      await stack.telemetry.query('ALTER TABLE telemetry_events DROP CONSTRAINT test_no_explode');
    }
  });

  it('refuses a revoked device with 403 and says when the workers are unreachable (503)', async () => {
    await stack.kv!.set(revokedKey(CHIP), 'stolen');
    try {
      const res = await post(batch());
      expect(res.status).toBe(403);
      expect((await res.json()).error.code).toBe('FORBIDDEN');
    } finally {
      await stack.kv!.del(revokedKey(CHIP));
    }
    workerDown = true;
    const down = await post(batch());
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('30');
    expect(await stored()).toEqual({ events: 0, batches: 0 });
    // Browser-facing CSRF rules do not apply to devices, and other methods are refused.
    expect((await edge.request(`/telemetry/v1/devices/${CHIP}/batches`)).status).toBe(405);
  });

  it('answers 503 while ingestion has no keys configured', async () => {
    const off = createEdgeApp({ kv: stack.kv!, objectStore, log, workerUrl: 'http://worker.test', rateLimits: null, fetch: () => Promise.reject(new Error('unused')) });
    const res = await off.request(`/telemetry/v1/devices/${CHIP}/batches`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(503);
  });
});
