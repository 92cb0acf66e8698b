import { describe, expect, it } from 'vitest';
import { generateKeySpec } from '../auth/seal.ts';
import { createLinkSigner } from './links.ts';

const key = (kid: string) => ({ kid, secret: generateKeySpec(kid).slice(kid.length + 1) });

describe('signed download links', () => {
  let now = 1_000_000;
  const k1 = key('k1');
  const signer = createLinkSigner([k1], () => now);

  it('opens exactly the key it was made for until it expires', async () => {
    const { token, expiresAt } = await signer.sign('reports/u1/v3/2025-01.json', 60);
    expect(expiresAt).toBe(now + 60);
    await expect(signer.verify(token)).resolves.toEqual({ ok: true, key: 'reports/u1/v3/2025-01.json', expiresAt: now + 60 });
    now += 60;
    await expect(signer.verify(token)).resolves.toEqual({ ok: false, reason: 'expired' });
  });

  it('cannot be rewritten to another key or forged with another key ring', async () => {
    const { token } = await signer.sign('reports/u1/v3/2025-01.json', 60);
    const [kid, , mac] = token.split('.');
    const other = btoa(JSON.stringify({ k: 'reports/u2/v3/2025-01.json', e: now + 60 })).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    await expect(signer.verify(`${kid}.${other}.${mac}`)).resolves.toEqual({ ok: false, reason: 'invalid' });
    const stranger = createLinkSigner([key('k1')], () => now);
    await expect(stranger.verify(token)).resolves.toEqual({ ok: false, reason: 'invalid' });
    await expect(signer.verify('garbage')).resolves.toEqual({ ok: false, reason: 'invalid' });
  });

  it('keeps working across a key rotation', async () => {
    const { token } = await signer.sign('reports/u1/v3/day.json', 60);
    const rotated = createLinkSigner([key('k2'), k1], () => now);
    await expect(rotated.verify(token)).resolves.toMatchObject({ ok: true });
  });
});
