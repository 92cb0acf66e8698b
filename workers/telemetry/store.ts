/**
 * Stores one device batch: its `telemetry_batches` row and its events in ONE transaction, so a
 * batch is either entirely stored or not at all. The batch row goes first with ON CONFLICT DO
 * NOTHING: a concurrent upload of the same batch waits for the first to commit, then finds it.
 */
import { createHash } from 'node:crypto';
import type { Oltp } from '../../shared/ports/oltp.ts';
import { canonicalBatch, type DeviceBatch } from '../../shared/telemetry/batch.ts';
import { arrayLiteral } from '../seed/bulk.ts';

/** The batch id is already taken by another device or by different readings. */
export class BatchConflictError extends Error {
  override readonly name = 'BatchConflictError';
}

export interface StoredBatch {
  batchId: string;
  chipId: string;
  events: number;
  receivedAt: string;
  /** True when this batch had been stored before (a replay): nothing was written now. */
  replayed: boolean;
}

const num = (v: number | undefined) => (v === undefined ? null : String(v));

export async function storeBatch(telemetry: Oltp, chipId: string, batch: DeviceBatch): Promise<StoredBatch> {
  const batchId = batch.batchId.toLowerCase();
  const hash = createHash('sha256').update(canonicalBatch(chipId, batch)).digest('hex');
  const times = batch.readings.map((r) => Date.parse(r.ts));
  const iso = (ms: number) => new Date(ms).toISOString();
  return telemetry.transaction(async (tx) => {
    const inserted = await tx.query<{ received_at: Date }>(
      `INSERT INTO telemetry_batches (batch_id, chip_id, events, content_sha256, min_ts, max_ts)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (batch_id) DO NOTHING RETURNING received_at`,
      [batchId, chipId, batch.readings.length, hash, iso(Math.min(...times)), iso(Math.max(...times))],
    );
    if (inserted.length === 0) {
      const [prior] = await tx.query<{ chip_id: string; events: number; content_sha256: string | null; received_at: Date }>(
        'SELECT chip_id, events, content_sha256, received_at FROM telemetry_batches WHERE batch_id = $1', [batchId]);
      if (!prior || prior.chip_id !== chipId || prior.content_sha256 !== hash) {
        throw new BatchConflictError(`batch ${batchId} was already stored with different content; use a new batch id for new readings`);
      }
      return { batchId, chipId, events: prior.events, receivedAt: prior.received_at.toISOString(), replayed: true };
    }
    const r = batch.readings;
    // One statement for all events: each column travels as one array (see workers/seed/bulk.ts).
    await tx.query(
      `INSERT INTO telemetry_events (chip_id, ts, kind, action, response_ms, error_code, battery_pct, grip_force_n, batch_id, seq)
       SELECT $1, t.ts, t.kind, t.action, t.response_ms, t.error_code, t.battery_pct, t.grip_force_n, $9::uuid, (t.ord - 1)::int4
       FROM unnest($2::timestamptz[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::int2[], $8::real[])
         WITH ORDINALITY AS t(ts, kind, action, response_ms, error_code, battery_pct, grip_force_n, ord)`,
      [
        chipId,
        arrayLiteral(times.map(iso)), arrayLiteral(r.map((x) => x.kind)), arrayLiteral(r.map((x) => x.action ?? null)),
        arrayLiteral(r.map((x) => num(x.responseMs))), arrayLiteral(r.map((x) => x.errorCode ?? null)),
        arrayLiteral(r.map((x) => num(x.batteryPct))), arrayLiteral(r.map((x) => num(x.gripForceN))), batchId,
      ],
    );
    return { batchId, chipId, events: r.length, receivedAt: inserted[0]!.received_at.toISOString(), replayed: false };
  });
}
