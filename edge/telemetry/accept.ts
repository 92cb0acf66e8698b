/**
 * The checks every device upload passes, at the edge and again on the workers (which trust no
 * caller): a JSON body within the size limit, signed with the device's key, a valid batch, and a
 * device that has not been revoked. Also the one error shape ingestion answers with.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { parseBatch, type BatchIssue, type DeviceBatch } from '../../shared/telemetry/batch.ts';
import { DeviceAuthError, type DeviceVerifier } from '../../shared/telemetry/device-auth.ts';
import type { Kv } from '../../shared/ports/kv.ts';
import { REGION_ID } from '../../shared/regions/config.ts';

export type IngestErrorCode =
  | 'BAD_REQUEST' | 'UNAUTHORIZED' | 'FORBIDDEN' | 'NOT_FOUND' | 'CONFLICT' | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE' | 'SERVICE_UNAVAILABLE';

const STATUS: Record<IngestErrorCode, 400 | 401 | 403 | 404 | 409 | 413 | 415 | 503> = {
  BAD_REQUEST: 400, UNAUTHORIZED: 401, FORBIDDEN: 403, NOT_FOUND: 404, CONFLICT: 409, PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415, SERVICE_UNAVAILABLE: 503,
};

/** `{ error: { code, message, issues? } }` with the matching status; 503s say when to retry. */
export function ingestError(c: Context, code: IngestErrorCode, message: string, issues?: BatchIssue[]): Response {
  if (code === 'SERVICE_UNAVAILABLE') c.header('retry-after', '30');
  return c.json({ error: { code, message, ...(issues?.length ? { issues } : {}) } }, STATUS[code]);
}

/** KV key whose presence refuses a device's uploads (value: why, for operators). */
export const revokedKey = (chipId: string) => `telemetry:revoked:${chipId}`;

/** 413 before the body is read when the declared or streamed size exceeds `maxBytes`. */
export const limitBody = (maxBytes: number): MiddlewareHandler =>
  bodyLimit({ maxSize: maxBytes, onError: (c) => ingestError(c, 'PAYLOAD_TOO_LARGE', `batch exceeds ${maxBytes} bytes; send fewer readings per batch`) });

/** `region`: the region the upload path names (region-bound devices, data residency); absent on the plain path. */
export interface AcceptedBatch { chipId: string; region?: string; kid: string; body: Uint8Array; batch: DeviceBatch }

export interface AcceptOptions {
  verify: DeviceVerifier;
  /** Checked for {@link revokedKey} when given. */
  kv?: Kv;
  now?: () => number;
}

/** Runs the checks in order of cost; returns the batch or the error response to send. */
export async function acceptUpload(c: Context, opts: AcceptOptions): Promise<AcceptedBatch | Response> {
  const chipId = c.req.param('chipId') ?? '';
  const region = c.req.param('region');
  if (region !== undefined && !REGION_ID.test(region)) return ingestError(c, 'NOT_FOUND', 'no such region');
  if (!/^application\/json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) {
    return ingestError(c, 'UNSUPPORTED_MEDIA_TYPE', 'content-type must be application/json');
  }
  const body = new Uint8Array(await c.req.arrayBuffer());
  let kid: string;
  try {
    // Authenticate before parsing: unauthenticated bytes are never interpreted.
    kid = await opts.verify(chipId, c.req.raw.headers, body, region);
  } catch (err) {
    if (!(err instanceof DeviceAuthError)) throw err;
    if (err.reason === 'bad-chip-id') return ingestError(c, 'NOT_FOUND', err.message);
    c.header('www-authenticate', 'BionicDevice-HMAC-SHA256');
    return ingestError(c, 'UNAUTHORIZED', err.message);
  }
  const parsed = parseBatch(body, (opts.now ?? Date.now)());
  if (!parsed.ok) return ingestError(c, 'BAD_REQUEST', parsed.message, parsed.issues);
  if (opts.kv) {
    let revoked: string | null;
    try {
      revoked = await opts.kv.get(revokedKey(chipId));
    } catch {
      // Refuse rather than let a possibly revoked device in; devices keep the batch and retry.
      return ingestError(c, 'SERVICE_UNAVAILABLE', 'device registry unavailable; retry later');
    }
    if (revoked !== null) return ingestError(c, 'FORBIDDEN', 'this device has been revoked');
  }
  return { chipId, ...(region ? { region } : {}), kid, body, batch: parsed.batch };
}
