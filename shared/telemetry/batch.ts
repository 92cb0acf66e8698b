/**
 * What a device uploads: one batch of readings under a batch id it chose (a UUID, reused when it
 * retries the same upload). Validated identically at the edge and on the workers.
 */
import { z } from 'zod';

/** Most readings one batch may carry. */
export const MAX_READINGS = 5_000;
/** Readings may be this far ahead of the server clock (device clock drift). */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
/** Readings older than this are refused: they belong to a repair import, not to a device upload. */
export const MAX_READING_AGE_MS = 30 * 24 * 3_600_000;

const reading = z
  .object({
    /** ISO 8601 with a zone, e.g. `2026-03-09T10:15:00.250Z`. */
    ts: z.string().datetime({ offset: true, message: 'must be an ISO 8601 date-time with a zone (Z or ±hh:mm)' }),
    kind: z.enum(['action', 'error', 'status']),
    action: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a lower-case identifier').optional(),
    responseMs: z.number().int().min(0).max(600_000).optional(),
    errorCode: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be an upper-case code such as E_MOTOR_STALL').optional(),
    batteryPct: z.number().int().min(0).max(100).optional(),
    gripForceN: z.number().min(0).max(5_000).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const bad = (path: string, message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path: [path], message });
    if ((r.kind === 'error') !== (r.errorCode !== undefined)) bad('errorCode', 'is required on error readings and only there');
    if (r.kind === 'status') {
      for (const f of ['action', 'responseMs', 'gripForceN'] as const) if (r[f] !== undefined) bad(f, 'is not allowed on status readings');
    }
  });

export type Reading = z.output<typeof reading>;

/** A batch as validated against the clock `nowMs`. */
export const batchSchemaAt = (nowMs: number) =>
  z
    .object({
      batchId: z.string().uuid(),
      readings: z.array(reading).min(1).max(MAX_READINGS),
    })
    .strict()
    .superRefine((b, ctx) => {
      b.readings.forEach((r, i) => {
        const t = Date.parse(r.ts);
        const problem = t > nowMs + MAX_CLOCK_SKEW_MS ? 'is in the future' : t < nowMs - MAX_READING_AGE_MS ? 'is older than 30 days' : undefined;
        if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['readings', i, 'ts'], message: problem });
      });
    });

export type DeviceBatch = z.output<ReturnType<typeof batchSchemaAt>>;

export interface BatchIssue { path: string; message: string }

export type ParsedBatch = { ok: true; batch: DeviceBatch } | { ok: false; message: string; issues: BatchIssue[] };

const MAX_ISSUES = 20;

/** Parses and validates a request body; never throws on bad input. */
export function parseBatch(body: Uint8Array, nowMs: number): ParsedBatch {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return { ok: false, message: 'body is not valid UTF-8 JSON', issues: [] };
  }
  const r = batchSchemaAt(nowMs).safeParse(json);
  if (r.success) return { ok: true, batch: r.data };
  const issues = r.error.issues.slice(0, MAX_ISSUES).map((i) => ({ path: i.path.join('.'), message: i.message }));
  return { ok: false, message: `invalid batch: ${issues.map((i) => `${i.path || '(body)'} ${i.message}`).slice(0, 3).join('; ')}`, issues };
}

/**
 * A canonical text of the batch's content (field order fixed by the schema), so a device that
 * re-serialises the same readings on retry is recognised as replaying, not conflicting.
 */
export function canonicalBatch(chipId: string, batch: DeviceBatch): string {
  return JSON.stringify({
    chipId,
    batchId: batch.batchId.toLowerCase(),
    readings: batch.readings.map((r) => [Date.parse(r.ts), r.kind, r.action ?? null, r.responseMs ?? null, r.errorCode ?? null, r.batteryPct ?? null, r.gripForceN ?? null]),
  });
}
