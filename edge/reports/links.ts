/**
 * Short-lived download links for one report object, signed by the edge: `<kid>.<payload>.<mac>`
 * where the payload names the exact object key and an expiry, and the MAC is HMAC-SHA-256 under a
 * key derived (HKDF) from the session key ring — so links rotate with the ring and need no secret
 * of their own. A link opens one object until it expires; changing the key inside breaks the MAC,
 * so it can never be turned into a link to another user's report. The payload also names the
 * region whose bucket holds the object (data residency: edge/reports/routes.tsx checks it).
 */
import { base64url } from 'jose';
import { decodeBase64, type KeyRingEntry } from '../auth/seal.ts';

export type LinkCheck = { ok: true; key: string; expiresAt: number; region?: string } | { ok: false; reason: 'invalid' | 'expired' };

export interface LinkSigner {
  sign(key: string, ttlSeconds: number, region?: string): Promise<{ token: string; expiresAt: number }>;
  verify(token: string): Promise<LinkCheck>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const INFO = enc.encode('bionicpro reports download link v1');

/** `now` is epoch seconds (the edge's clock). */
export function createLinkSigner(entries: KeyRingEntry[], now: () => number): LinkSigner {
  if (entries.length === 0) throw new Error('createLinkSigner: the key ring is empty');
  const signKid = entries[0]!.kid;
  let keys: Promise<Map<string, CryptoKey>> | undefined;
  const macKeys = () => (keys ??= (async () => {
    const out = new Map<string, CryptoKey>();
    for (const { kid, secret } of entries) {
      const ikm = await crypto.subtle.importKey('raw', decodeBase64(secret) as Uint8Array<ArrayBuffer>, 'HKDF', false, ['deriveKey']);
      out.set(kid, await crypto.subtle.deriveKey(
        { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: INFO },
        ikm, { name: 'HMAC', hash: 'SHA-256', length: 256 }, false, ['sign', 'verify'],
      ));
    }
    return out;
  })());

  return {
    async sign(key, ttlSeconds, region) {
      const expiresAt = now() + ttlSeconds;
      const payload = base64url.encode(JSON.stringify({ k: key, e: expiresAt, ...(region ? { r: region } : {}) }));
      const mac = await crypto.subtle.sign('HMAC', (await macKeys()).get(signKid)!, enc.encode(`${signKid}.${payload}`));
      return { token: `${signKid}.${payload}.${base64url.encode(new Uint8Array(mac))}`, expiresAt };
    },
    async verify(token) {
      const parts = token.split('.');
      if (parts.length !== 3) return { ok: false, reason: 'invalid' };
      const [kid, payload, mac] = parts as [string, string, string];
      const cryptoKey = (await macKeys()).get(kid);
      if (!cryptoKey) return { ok: false, reason: 'invalid' };
      let macBytes: Uint8Array;
      let claims: { k?: unknown; e?: unknown; r?: unknown };
      try {
        macBytes = base64url.decode(mac);
        // WebCrypto's verify compares in constant time.
        if (!(await crypto.subtle.verify('HMAC', cryptoKey, macBytes as Uint8Array<ArrayBuffer>, enc.encode(`${kid}.${payload}`)))) return { ok: false, reason: 'invalid' };
        claims = JSON.parse(dec.decode(base64url.decode(payload)));
      } catch {
        return { ok: false, reason: 'invalid' };
      }
      if (typeof claims.k !== 'string' || typeof claims.e !== 'number' || (claims.r !== undefined && typeof claims.r !== 'string')) return { ok: false, reason: 'invalid' };
      if (claims.e <= now()) return { ok: false, reason: 'expired' };
      return { ok: true, key: claims.k, expiresAt: claims.e, ...(claims.r ? { region: claims.r } : {}) };
    },
  };
}
