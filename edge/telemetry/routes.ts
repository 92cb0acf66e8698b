/**
 * Device telemetry at the edge: `POST /telemetry/v1/devices/:chipId/batches`, and for devices
 * provisioned for a region (data residency) `POST /telemetry/v1/regions/:region/devices/:chipId/batches`,
 * signed with the region-bound key and forwarded to the same region's path. The edge has no
 * database, so after the checks (edge/telemetry/accept.ts) it forwards the exact signed bytes to the
 * workers, which check again and store the batch in one transaction, and relays their answer.
 * Device requests carry no cookie and no ambient authority: they are mounted before the
 * browser-facing CSRF and session middleware.
 */
import { Hono } from 'hono';
import type { TelemetryConfig } from '../../shared/telemetry/config.ts';
import { createDeviceVerifier, KEY_ID_HEADER, SIGNATURE_HEADER } from '../../shared/telemetry/device-auth.ts';
import type { Logger } from '../../shared/log.ts';
import type { Kv } from '../../shared/ports/kv.ts';
import { acceptUpload, ingestError, limitBody } from './accept.ts';

export interface TelemetryRoutesOptions {
  /** Absent or without keys: ingestion is off and devices get 503. */
  config?: TelemetryConfig | null;
  kv: Kv;
  workerUrl: string;
  fetch?: typeof fetch;
  now?: () => number;
}

/** Worker endpoint the edge forwards accepted batches to (workers/telemetry/routes.ts). */
export const WORKER_INGEST_PATH = '/internal/telemetry/devices';
/** The same for region-bound devices: `<this>/<region>/devices/<chipId>/batches`. */
export const WORKER_INGEST_REGIONS_PATH = '/internal/telemetry/regions';

export function telemetryRoutes(opts: TelemetryRoutesOptions) {
  const app = new Hono<{ Variables: { requestId: string; log: Logger } }>();
  const keys = opts.config?.masterKeys ?? [];
  const doFetch = opts.fetch ?? fetch;
  const verify = createDeviceVerifier(keys);
  const route = '/v1/devices/:chipId/batches';
  const regionalRoute = '/v1/regions/:region/devices/:chipId/batches';

  app.on('POST', [route, regionalRoute], async (c, next) => {
    if (keys.length === 0) return ingestError(c, 'SERVICE_UNAVAILABLE', 'telemetry ingestion is not configured (TELEMETRY_DEVICE_KEYS)');
    return next();
  }, limitBody(opts.config?.maxBatchBytes ?? 256 * 1024), async (c) => {
    const accepted = await acceptUpload(c, { verify, kv: opts.kv, now: opts.now });
    if (accepted instanceof Response) return accepted;
    const headers = new Headers({ 'content-type': 'application/json', [SIGNATURE_HEADER]: c.req.header(SIGNATURE_HEADER)!, [KEY_ID_HEADER]: accepted.kid });
    const requestId = c.get('requestId');
    if (requestId) headers.set('x-request-id', requestId);
    const devices = accepted.region ? `${WORKER_INGEST_REGIONS_PATH}/${accepted.region}/devices` : WORKER_INGEST_PATH;
    const target = new URL(`${devices}/${encodeURIComponent(accepted.chipId)}/batches`, opts.workerUrl);
    let res: Response;
    try {
      res = await doFetch(target, { method: 'POST', headers, body: accepted.body as BodyInit });
    } catch (err) {
      c.get('log')?.error('worker unreachable for telemetry', { target: target.origin, err });
      return ingestError(c, 'SERVICE_UNAVAILABLE', 'telemetry storage is unavailable; retry later');
    }
    const out = new Headers({ 'content-type': res.headers.get('content-type') ?? 'application/json' });
    for (const h of ['idempotent-replayed', 'retry-after']) {
      const v = res.headers.get(h);
      if (v) out.set(h, v);
    }
    return new Response(res.body, { status: res.status, headers: out });
  });
  for (const r of [route, regionalRoute]) app.all(r, (c) => c.json({ error: { code: 'METHOD_NOT_ALLOWED', message: 'use POST' } }, 405, { allow: 'POST' }));
  return app;
}
