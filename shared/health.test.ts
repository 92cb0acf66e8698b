import { describe, expect, it } from 'vitest';
import { checkHealth } from './health.ts';

describe('checkHealth', () => {
  it('is ok when every dependency answers', async () => {
    const r = await checkHealth({ a: async () => {}, b: async () => 1 });
    expect(r.status).toBe('ok');
    expect(r.dependencies.a!.ok).toBe(true);
  });

  it('names the failing dependency and its error', async () => {
    const r = await checkHealth({ kv: async () => { throw new Error('ECONNREFUSED'); }, db: async () => {} });
    expect(r.status).toBe('unavailable');
    expect(r.dependencies.kv).toMatchObject({ ok: false, error: 'ECONNREFUSED' });
    expect(r.dependencies.db!.ok).toBe(true);
  });

  it('times out a hanging dependency without waiting for it', async () => {
    const r = await checkHealth({ slow: () => new Promise(() => {}) }, 50);
    expect(r.dependencies.slow).toMatchObject({ ok: false, error: 'timed out after 50 ms' });
  });
});
