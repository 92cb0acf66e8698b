/**
 * Sealed tokens: AES-256-GCM (WebCrypto) under a key ring. The newest key seals; any key still in
 * the ring opens, so a key is rotated by prepending a new one and removing the old one once every
 * session sealed with it has expired — nobody is logged out by a rotation.
 *
 * Format: `v1.<kid>.<iv>.<ciphertext+tag>` (base64url). The caller's associated data (for example
 * the session it belongs to) is authenticated too, so a sealed value cannot be moved elsewhere.
 */
import { base64url } from 'jose';

export interface KeyRingEntry { kid: string; /** 32 bytes, base64 or base64url. */ secret: string }

export interface KeyRing {
  /** The key id new values are sealed with. */
  readonly sealKid: string;
  seal(plaintext: string, aad: string): Promise<string>;
  /** The plaintext, or null when the value is malformed, tampered with, or sealed by an unknown key. */
  open(sealed: string, aad: string): Promise<string | null>;
}

export class KeyRingError extends Error {
  override readonly name = 'KeyRingError';
}

const KID = /^[A-Za-z0-9_-]{1,32}$/;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Decodes standard or URL-safe base64, padded or not. */
export function decodeBase64(s: string): Uint8Array {
  return base64url.decode(s.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''));
}

function validateEntries(entries: KeyRingEntry[]) {
  if (entries.length === 0) throw new KeyRingError('at least one key is required');
  const seen = new Set<string>();
  for (const { kid, secret } of entries) {
    if (!KID.test(kid)) throw new KeyRingError(`key id "${kid}" must be 1-32 characters of A-Z a-z 0-9 _ -`);
    if (seen.has(kid)) throw new KeyRingError(`key id "${kid}" appears twice`);
    seen.add(kid);
    let bytes: Uint8Array;
    try { bytes = decodeBase64(secret); } catch { throw new KeyRingError(`key "${kid}" is not base64`); }
    if (bytes.length !== 32) throw new KeyRingError(`key "${kid}" must be 32 bytes (256 bits), got ${bytes.length}`);
  }
}

/** Builds the ring; the first entry seals. Keys are imported into WebCrypto on first use. */
export function createKeyRing(entries: KeyRingEntry[]): KeyRing {
  validateEntries(entries);
  let imported: Promise<Map<string, CryptoKey>> | undefined;
  const cryptoKeys = () => (imported ??= (async () => {
    const keys = new Map<string, CryptoKey>();
    for (const { kid, secret } of entries) {
      keys.set(kid, await crypto.subtle.importKey('raw', decodeBase64(secret) as Uint8Array<ArrayBuffer>, 'AES-GCM', false, ['encrypt', 'decrypt']));
    }
    return keys;
  })());
  const sealKid = entries[0]!.kid;

  return {
    sealKid,
    async seal(plaintext, aad) {
      const key = (await cryptoKeys()).get(sealKid)!;
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: enc.encode(aad) }, key, enc.encode(plaintext));
      return `v1.${sealKid}.${base64url.encode(iv)}.${base64url.encode(new Uint8Array(ct))}`;
    },
    async open(sealed, aad) {
      const parts = sealed.split('.');
      if (parts.length !== 4 || parts[0] !== 'v1') return null;
      const key = (await cryptoKeys()).get(parts[1]!);
      if (!key) return null;
      try {
        const iv = base64url.decode(parts[2]!);
        if (iv.length !== 12) return null;
        const pt = await crypto.subtle.decrypt(
          { name: 'AES-GCM', iv: iv as Uint8Array<ArrayBuffer>, additionalData: enc.encode(aad) }, key, base64url.decode(parts[3]!) as Uint8Array<ArrayBuffer>,
        );
        return dec.decode(pt);
      } catch {
        return null; // wrong key, wrong associated data or tampered bytes: GCM's tag says no
      }
    },
  };
}

/** A fresh random 256-bit key in the SESSION_KEYS notation (for docs and the dev launcher). */
export function generateKeySpec(kid: string): string {
  return `${kid}:${base64url.encode(crypto.getRandomValues(new Uint8Array(32)))}`;
}
