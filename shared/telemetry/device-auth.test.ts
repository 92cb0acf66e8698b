import { describe, expect, it } from 'vitest';
import { createDeviceVerifier, DeviceAuthError, deriveDeviceKey, signBody } from './device-auth.ts';

const secret = (fill: number) => new Uint8Array(32).fill(fill);
const ring = [{ kid: 'k2', secret: secret(2) }, { kid: 'k1', secret: secret(1) }];
const body = new TextEncoder().encode('{"batchId":"x"}');
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

async function headersFor(chip: string, master: Uint8Array, kid?: string, payload = body, region?: string) {
  const h = new Headers({ 'x-device-signature': await signBody(await deriveDeviceKey(master, chip, region), payload) });
  if (kid) h.set('x-device-key-id', kid);
  return h;
}

describe('device keys and signatures', () => {
  it('derives a stable key per master key and chip (RFC 5869 HKDF-SHA256)', async () => {
    const a = await deriveDeviceKey(secret(1), 'BP-0001');
    expect(a).toHaveLength(32);
    expect(hex(a)).toBe(hex(await deriveDeviceKey(secret(1), 'BP-0001')));
    expect(hex(a)).not.toBe(hex(await deriveDeviceKey(secret(1), 'BP-0002')));
    expect(hex(a)).not.toBe(hex(await deriveDeviceKey(secret(2), 'BP-0001')));
  });

  it('verifies the device\'s own signature under the current or an older key id', async () => {
    const verify = createDeviceVerifier(ring);
    await expect(verify('BP-0001', await headersFor('BP-0001', secret(2)), body)).resolves.toBe('k2');
    await expect(verify('BP-0001', await headersFor('BP-0001', secret(1), 'k1'), body)).resolves.toBe('k1');
  });

  it('refuses another chip\'s key, a changed body, an unknown key id and a missing signature', async () => {
    const verify = createDeviceVerifier(ring);
    const reason = (p: Promise<unknown>) => p.then(() => 'accepted', (e: DeviceAuthError) => e.reason);
    expect(await reason(verify('BP-0001', await headersFor('BP-0002', secret(2)), body))).toBe('bad-signature');
    expect(await reason(verify('BP-0001', await headersFor('BP-0001', secret(2)), new TextEncoder().encode('{"batchId":"y"}')))).toBe('bad-signature');
    expect(await reason(verify('BP-0001', await headersFor('BP-0001', secret(1), 'k1x'), body))).toBe('unknown-key');
    expect(await reason(verify('BP-0001', new Headers(), body))).toBe('missing-signature');
    expect(await reason(verify('bad/chip', await headersFor('bad/chip', secret(2)), body))).toBe('bad-chip-id');
  });

  it('binds a region-bound device\'s key to its region: it verifies only on that region\'s path', async () => {
    const verify = createDeviceVerifier(ring);
    const reason = (p: Promise<unknown>) => p.then(() => 'accepted', (e: DeviceAuthError) => e.reason);
    const ru = await headersFor('BP-0001', secret(2), undefined, body, 'ru');
    expect(hex(await deriveDeviceKey(secret(2), 'BP-0001', 'ru'))).not.toBe(hex(await deriveDeviceKey(secret(2), 'BP-0001', 'eu')));
    expect(hex(await deriveDeviceKey(secret(2), 'BP-0001', 'ru'))).not.toBe(hex(await deriveDeviceKey(secret(2), 'BP-0001')));
    expect(await reason(verify('BP-0001', ru, body, 'ru'))).toBe('accepted');
    expect(await reason(verify('BP-0001', ru, body, 'eu'))).toBe('bad-signature');
    expect(await reason(verify('BP-0001', ru, body))).toBe('bad-signature');
    expect(await reason(verify('BP-0001', await headersFor('BP-0001', secret(2)), body, 'ru'))).toBe('bad-signature');
  });
});
