/**
 * The workers' half of device ingestion: `POST /internal/telemetry/devices/:chipId/batches`,
 * called by the edge with the device's exact bytes and signature. The worker trusts no caller: it
 * verifies the signature and the batch again, then stores it (workers/telemetry/store.ts).
 *
 * Answers: 200 `{ batchId, chipId, events, receivedAt }` — identical for a replay, which also
 * carries `idempotent-replayed: true` and stores nothing; 409 when the batch id holds other readings.
 *
 * Data residency: a region-bound device posts to `/regions/:region/devices/:chipId/batches` and
 * its batch goes to that region's telemetry database — only if the device belongs to a customer of
 * that region (its CRM's `prostheses`); a device of another region, an unknown region, or (with
 * regions configured) a device without a region is refused (403, `residency.refused`).
 */
import { Hono } from 'hono';
import type { Logger } from '../../shared/log.ts';
import type { Kv } from '../../shared/ports/kv.ts';
import type { Oltp } from '../../shared/ports/oltp.ts';
import type { RegionPorts } from '../../shared/regions/ports.ts';
import { assertSameRegion, logRefusal, ResidencyError } from '../../shared/regions/residency.ts';
import type { TelemetryConfig } from '../../shared/telemetry/config.ts';
import { createDeviceVerifier } from '../../shared/telemetry/device-auth.ts';
import { acceptUpload, ingestError, limitBody } from '../../edge/telemetry/accept.ts';
import { createChipLocator } from '../regions/locate.ts';
import { BatchConflictError, storeBatch } from './store.ts';

export interface IngestRoutesOptions {
  config: TelemetryConfig;
  /** The implicit region's telemetry database (used when `regions` is absent). */
  telemetry: Oltp;
  /** Each region's stores: batches go to the device's region's telemetry database. */
  regions?: RegionPorts;
  kv?: Kv;
  now?: () => number;
}

export function ingestRoutes(opts: IngestRoutesOptions) {
  const app = new Hono<{ Variables: { log: Logger } }>();
  const verify = createDeviceVerifier(opts.config.masterKeys);
  const { regions } = opts;
  const locateChip = regions ? createChipLocator(regions, opts.now) : null;

  /** The telemetry database for this upload; throws ResidencyError, or answers null for an unknown device. */
  async function storeFor(chipId: string, region: string | undefined, log: Logger | undefined): Promise<Oltp | null> {
    if (!regions) return opts.telemetry;
    if (region === undefined) {
      if (regions.config.implicit) return regions.all()[0]!.telemetry;
      const err = new ResidencyError('NO_REGION', null, null, 'telemetry batch');
      logRefusal(err, log, chipId);
      throw err;
    }
    const stores = regions.get(region, log);
    if (regions.config.implicit) return stores.telemetry;
    const owner = await locateChip!(chipId);
    if (!owner) return null;
    assertSameRegion(region, owner, 'telemetry batch', log, chipId);
    return stores.telemetry;
  }

  app.on('POST', ['/devices/:chipId/batches', '/regions/:region/devices/:chipId/batches'], async (c, next) => {
    if (opts.config.masterKeys.length === 0) return ingestError(c, 'SERVICE_UNAVAILABLE', 'telemetry ingestion is not configured (TELEMETRY_DEVICE_KEYS)');
    return next();
  }, limitBody(opts.config.maxBatchBytes), async (c) => {
    const accepted = await acceptUpload(c, { verify, kv: opts.kv, now: opts.now });
    if (accepted instanceof Response) return accepted;
    let telemetry: Oltp | null;
    try {
      telemetry = await storeFor(accepted.chipId, accepted.region, c.get('log'));
    } catch (err) {
      if (err instanceof ResidencyError) return ingestError(c, 'FORBIDDEN', err.message);
      c.get('log')?.error('locating a device\'s region failed', { chipId: accepted.chipId, err });
      return ingestError(c, 'SERVICE_UNAVAILABLE', 'device registry unavailable; retry later');
    }
    if (!telemetry) return ingestError(c, 'NOT_FOUND', 'this device is not registered in its region');
    try {
      const { replayed, ...stored } = await storeBatch(telemetry, accepted.chipId, accepted.batch);
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
