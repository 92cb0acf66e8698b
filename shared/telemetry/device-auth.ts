/**
 * Device authentication: every device holds its own HMAC key, derived from a master key and its
 * chip id (HKDF-SHA256), and signs each request body with it. Whoever holds the master key ring
 * (edge and workers) can verify any device without a database; a leaked device key exposes only
 * that device. Keys are handed to devices at provisioning (`workers/telemetry/device-cli.ts key`).
 *
 * Data residency: a device provisioned for a region (its owner's) has a key derived from the region
 * and the chip id together, and uploads to that region's path. A device therefore cannot claim
 * another region: the same chip id under another region is another key. Devices without a region
 * (single-region deployments) keep the original derivation.
 *
 * Headers: `x-device-key-id: <kid>` (optional; the ring's first key when absent) and
 * `x-device-signature: sha256=<hex HMAC-SHA256 of the exact body bytes>`.
 */
import type { DeviceMasterKey } from './config.ts';

export const KEY_ID_HEADER = 'x-device-key-id';
export const SIGNATURE_HEADER = 'x-device-signature';

const enc = new TextEncoder();
// Changing these changes every device's key: they are part of the provisioning contract.
const HKDF_SALT = enc.encode('bionicpro/telemetry/device-key/v1');
const SIGNATURE = /^sha256=([0-9a-f]{64})$/;
const CHIP_ID = /^[A-Za-z0-9._-]{4,64}$/;

/** Why a request was not accepted as coming from its device. */
export class DeviceAuthError extends Error {
  override readonly name = 'DeviceAuthError';
  constructor(readonly reason: 'missing-signature' | 'unknown-key' | 'bad-signature' | 'bad-chip-id', message: string) {
    super(message);
  }
}

/** True for chip ids the ingestion endpoint accepts (URL-safe, 4-64 characters). */
export const isValidChipId = (chipId: string): boolean => CHIP_ID.test(chipId);

/** The 32-byte device key for `chipId` (bound to `region` when given) under one master key. */
export async function deriveDeviceKey(master: Uint8Array, chipId: string, region?: string): Promise<Uint8Array> {
  const ikm = await crypto.subtle.importKey('raw', master as BufferSource, 'HKDF', false, ['deriveBits']);
  const info = region ? `region:${region}/chip:${chipId}` : `chip:${chipId}`;
  const bits = await crypto.subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: HKDF_SALT, info: enc.encode(info) }, ikm, 256);
  return new Uint8Array(bits);
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const unhex = (text: string) => Uint8Array.from(text.match(/../g) ?? [], (h) => parseInt(h, 16));

const hmacKey = (key: Uint8Array, usage: 'sign' | 'verify') =>
  crypto.subtle.importKey('raw', key as BufferSource, { name: 'HMAC', hash: 'SHA-256' }, false, [usage]);

/** The `x-device-signature` value a device sends for `body` (what device firmware implements). */
export async function signBody(deviceKey: Uint8Array, body: Uint8Array): Promise<string> {
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(deviceKey, 'sign'), body as BufferSource);
  return `sha256=${hex(new Uint8Array(mac))}`;
}

/**
 * Verifies a device's request. Derived keys are cached (bounded) since devices post often.
 * @returns the key id that verified it
 */
export function createDeviceVerifier(masterKeys: readonly DeviceMasterKey[], cacheSize = 10_000) {
  const cache = new Map<string, Promise<CryptoKey>>();
  const keyFor = (master: DeviceMasterKey, chipId: string, region: string | undefined) => {
    const id = `${master.kid}\u0000${region ?? ''}\u0000${chipId}`;
    let key = cache.get(id);
    if (!key) {
      key = deriveDeviceKey(master.secret, chipId, region).then((k) => hmacKey(k, 'verify'));
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!);
      cache.set(id, key);
    }
    return key;
  };
  /** `region`: the region the upload names (its path); the device's key must be that region's. */
  return async function verify(chipId: string, headers: Headers, body: Uint8Array, region?: string): Promise<string> {
    if (!isValidChipId(chipId)) throw new DeviceAuthError('bad-chip-id', 'chip id must be 4-64 characters [A-Za-z0-9._-]');
    const match = SIGNATURE.exec(headers.get(SIGNATURE_HEADER) ?? '');
    if (!match) throw new DeviceAuthError('missing-signature', `${SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body> is required`);
    const kid = headers.get(KEY_ID_HEADER) ?? masterKeys[0]?.kid;
    const master = masterKeys.find((k) => k.kid === kid);
    if (!master) throw new DeviceAuthError('unknown-key', `unknown ${KEY_ID_HEADER}`);
    // crypto.subtle.verify compares in constant time.
    const ok = await crypto.subtle.verify('HMAC', await keyFor(master, chipId, region), unhex(match[1]!) as BufferSource, body as BufferSource);
    if (!ok) throw new DeviceAuthError('bad-signature', 'signature does not match this device\'s key');
    return master.kid;
  };
}

export type DeviceVerifier = ReturnType<typeof createDeviceVerifier>;
