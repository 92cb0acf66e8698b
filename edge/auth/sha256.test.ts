import { describe, expect, it } from 'vitest';
import { sha256 } from './sha256.ts';

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
const enc = new TextEncoder();

describe('sha256', () => {
  it('gives the FIPS 180-4 test vectors', () => {
    expect(hex(sha256(enc.encode('')))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hex(sha256(enc.encode('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hex(sha256(enc.encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))))
      .toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('agrees with WebCrypto for every length across several block boundaries', async () => {
    for (let n = 0; n <= 200; n++) {
      const data = crypto.getRandomValues(new Uint8Array(n));
      expect(hex(sha256(data)), `length ${n}`).toBe(hex(new Uint8Array(await crypto.subtle.digest('SHA-256', data))));
    }
  });
});
