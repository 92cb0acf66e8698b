import { describe, expect, it } from 'vitest';
import { createKeyRing, generateKeySpec, KeyRingError, type KeyRingEntry } from './seal.ts';

const entry = (kid: string): KeyRingEntry => ({ kid, secret: generateKeySpec(kid).slice(kid.length + 1) });

describe('sealed tokens (AES-256-GCM key ring)', () => {
  it('round-trips and never shows the plaintext', async () => {
    const ring = createKeyRing([entry('k1')]);
    const sealed = await ring.seal('refresh-token-value', 'session:abc');
    expect(sealed).toMatch(/^v1\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('refresh-token-value');
    expect(await ring.open(sealed, 'session:abc')).toBe('refresh-token-value');
    expect(await ring.seal('x', 'a')).not.toBe(await ring.seal('x', 'a')); // fresh IV each time
  });

  it('rotates: the newest key seals, older keys still open, removed keys do not', async () => {
    const k1 = entry('k1');
    const k2 = entry('k2');
    const old = await createKeyRing([k1]).seal('old', 'aad');
    const rotated = createKeyRing([k2, k1]);
    expect(rotated.sealKid).toBe('k2');
    expect(await rotated.open(old, 'aad')).toBe('old');
    const fresh = await rotated.seal('new', 'aad');
    expect(fresh.split('.')[1]).toBe('k2');
    expect(await createKeyRing([k2]).open(old, 'aad')).toBeNull();
  });

  it('refuses tampering, another context and another key with the same id', async () => {
    const ring = createKeyRing([entry('k1')]);
    const sealed = await ring.seal('secret', 'session:one');
    const parts = sealed.split('.');
    const flip = (s: string) => s.slice(0, 5) + (s[5] === 'A' ? 'B' : 'A') + s.slice(6);
    expect(await ring.open([parts[0], parts[1], parts[2], flip(parts[3]!)].join('.'), 'session:one')).toBeNull();
    expect(await ring.open([parts[0], parts[1], flip(parts[2]!), parts[3]].join('.'), 'session:one')).toBeNull();
    expect(await ring.open(sealed, 'session:two')).toBeNull();
    expect(await createKeyRing([entry('k1')]).open(sealed, 'session:one')).toBeNull();
    for (const bad of ['', 'v1', 'v2.k1.a.b', 'v1.nokey.AAAAAAAAAAAAAAAA.AAAA', 'v1.k1.@@.##']) {
      expect(await ring.open(bad, 'session:one')).toBeNull();
    }
  });

  it('validates the ring: 32-byte keys, unique well-formed ids, at least one key', () => {
    expect(() => createKeyRing([])).toThrow(KeyRingError);
    expect(() => createKeyRing([{ kid: 'k1', secret: 'c2hvcnQ=' }])).toThrow(/32 bytes/);
    expect(() => createKeyRing([{ kid: 'bad kid', secret: entry('x').secret }])).toThrow(/key id/);
    expect(() => createKeyRing([entry('k1'), entry('k1')])).toThrow(/twice/);
    // Standard base64 (with + / =) works as well as base64url.
    expect(() => createKeyRing([{ kid: 'k1', secret: btoa(String.fromCharCode(...new Uint8Array(32).fill(251))) }])).not.toThrow();
  });
});
