import { describe, expect, it } from 'vitest';
import { canonicalBatch, MAX_READINGS, parseBatch } from './batch.ts';

const now = Date.parse('2026-03-10T12:00:00Z');
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const ok = { batchId: '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b', readings: [{ ts: '2026-03-10T11:00:00+01:00', kind: 'error', errorCode: 'E_X', responseMs: 5 }] };

describe('device batch validation', () => {
  it('accepts a valid batch, zones included', () => {
    const r = parseBatch(enc(ok), now);
    expect(r.ok).toBe(true);
  });

  it('names each problem with its path', () => {
    const bad = (readings: unknown[]) => {
      const r = parseBatch(enc({ ...ok, readings }), now);
      return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
    };
    expect(bad([{ ts: '2026-03-10T11:00:00Z', kind: 'action', errorCode: 'E_X' }])).toEqual(['readings.0.errorCode: is required on error readings and only there']);
    expect(bad([{ ts: '2026-03-10T12:06:00Z', kind: 'status' }])).toEqual(['readings.0.ts: is in the future']);
    expect(bad([{ ts: '2026-02-01T00:00:00Z', kind: 'status' }])).toEqual(['readings.0.ts: is older than 30 days']);
    expect(bad([{ ts: '2026-03-10T11:00:00Z', kind: 'action', gripForceN: -1 }])[0]).toMatch(/^readings\.0\.gripForceN/);
    expect(bad(Array.from({ length: MAX_READINGS + 1 }, () => ({ ts: '2026-03-10T11:00:00Z', kind: 'status' })))[0]).toMatch(/^readings: Array must contain at most/);
    expect(parseBatch(new Uint8Array([0xff, 0xfe]), now)).toMatchObject({ ok: false, message: 'body is not valid UTF-8 JSON' });
  });

  it('gives the same canonical content whatever the key order or zone notation', () => {
    const a = parseBatch(enc(ok), now);
    const b = parseBatch(enc({ readings: [{ responseMs: 5, errorCode: 'E_X', kind: 'error', ts: '2026-03-10T10:00:00Z' }], batchId: ok.batchId.toUpperCase() }), now);
    if (!a.ok || !b.ok) throw new Error('both parse');
    expect(canonicalBatch('C1', a.batch)).toBe(canonicalBatch('C1', b.batch));
    expect(canonicalBatch('C1', a.batch)).not.toBe(canonicalBatch('C2', a.batch));
  });
});
