/**
 * The workers' half of device ingestion: `POST /internal/telemetry/devices/:chipId/batches`,
 * called by the edge with the device's exact bytes and signature. The worker trusts no caller: it
 * verifies the signature and the batch again, then stores it (workers/telemetry/store.ts).
 *
 * Answers: 200 `{ batchId, chipId, events, receivedAt }` — identical for a replay, which also
 * carries `idempotent-replayed: true` and stores nothing; 409 when the batch id holds other readings.
 */
import { Hono } from 'hono';
import type { Logger } from '../../shared/log.ts';
import type { Kv } from '../../shared/ports/kv.ts';
import type { Oltp } from '../../shared/ports/oltp.ts';
import type { TelemetryConfig } from '../../shared/telemetry/config.ts';
import { createDeviceVerifier } from '../../shared/telemetry/device-auth.ts';
import { acceptUpload, ingestError, limitBody } from '../../edge/telemetry/accept.ts';
import { BatchConflictError, storeBatch } from './store.ts';

export interface IngestRoutesOptions {
  config: TelemetryConfig;
  telemetry: Oltp;
  kv?: Kv;
  now?: () => number;
}

export function ingestRoutes(opts: IngestRoutesOptions) {
  const app = new Hono<{ Variables: { log: Logger } }>();
  const verify = createDeviceVerifier(opts.config.masterKeys);
  app.post('/devices/:chipId/batches', async (c, next) => {
    if (opts.config.masterKeys.length === 0) return ingestError(c, 'SERVICE_UNAVAILABLE', 'telemetry ingestion is not configured (TELEMETRY_DEVICE_KEYS)');
    return next();
  }, limitBody(opts.config.maxBatchBytes), async (c) => {
    const accepted = await acceptUpload(c, { verify, kv: opts.kv, now: opts.now });
    if (accepted instanceof Response) return accepted;
    try {
      const { replayed, ...stored } = await storeBatch(opts.telemetry, accepted.chipId, accepted.batch);
      if (replayed) c.header('idempotent-replayed', 'true');
      c.get('log')?.debug('telemetry batch', { chipId: stored.chipId, batchId: stored.batchId, events: stored.events, replayed });
      return c.json(stored, 200);
    } catch (err) {
      if (err instanceof BatchConflictError) return ingestError(c, 'CONFLICT', err.message);
      c.get('log')?.error('storing a telemetry batch failed', { chipId: accepted.chipId, err });
      return ingestError(c, 'SERVICE_UNAVAILABLE', 'telemetry storage failed; retry later');
    }
  });
  return app;
}
