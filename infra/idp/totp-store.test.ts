import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTotpStore } from './totp-store.ts';

let dir: string;
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'totp-store-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

const codeAt = (secret: string, timestamp = Date.now()) => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp });

describe('TOTP store', () => {
  it('enrols: a pending secret becomes the user\'s only after a correct code', async () => {
    const store = openTotpStore(dir);
    const { secret, uri } = await store.beginEnrolment('User3');
    expect(uri).toMatch(/^otpauth:\/\/totp\/BionicPRO:User3\?issuer=BionicPRO&secret=[A-Z2-7]+&algorithm=SHA1&digits=6&period=30$/);
    expect(store.secret('user3')).toBeNull();
    expect(await store.verify('user3', codeAt(secret))).toBe(false); // not confirmed yet: no sign-in with it
    expect(await store.verify('user3', '000000', { enrolling: true })).toBe(false);
    expect(await store.verify('user3', codeAt(secret), { enrolling: true })).toBe(true);
    expect(store.secret('USER3')).toBe(secret);
    expect(await store.verify('user3', codeAt(secret, Date.now() + 30_000), { enrolling: true })).toBe(false); // already enrolled
  });

  it('accepts each time step once (no replay), tolerates one step of drift, refuses junk', async () => {
    const store = openTotpStore(dir);
    await store.preEnrol(['user1']);
    const secret = store.secret('user1')!;
    const now = codeAt(secret);
    expect(await store.verify('user1', now)).toBe(true);
    expect(await store.verify('user1', now)).toBe(false);
    expect(await store.verify('user1', codeAt(secret, Date.now() - 30_000))).toBe(false); // older than the last used step
    expect(await store.verify('user1', codeAt(secret, Date.now() + 30_000))).toBe(true);
    expect(await store.verify('user1', codeAt(secret, Date.now() + 90_000))).toBe(false); // too far ahead
    for (const junk of ['', '12345', '1234567', 'abcdef', '12 345']) expect(await store.verify('user1', junk)).toBe(false);
    expect(await store.verify('nobody', now)).toBe(false);
  });

  it('nextCode gives an unused code and says when it becomes acceptable', async () => {
    const store = openTotpStore(dir);
    await store.preEnrol(['user1']);
    const first = store.nextCode('user1');
    expect(first.validFromMs).toBeLessThanOrEqual(Date.now());
    expect(await store.verify('user1', first.code)).toBe(true);
    const second = store.nextCode('user1');
    expect(second.code).not.toBe(first.code);
    expect(await store.verify('user1', second.code)).toBe(true); // the next step, inside the drift window
    const third = store.nextCode('user1');
    expect(third.validFromMs).toBeGreaterThan(Date.now()); // must wait for the clock
  });

  it('persists secrets owner-only and survives reopening; pre-enrolment never replaces a secret', async () => {
    const store = openTotpStore(dir);
    await store.preEnrol(['user1', 'admin1']);
    const s1 = store.secret('user1');
    await store.preEnrol(['user1']);
    expect(store.secret('user1')).toBe(s1);
    const again = openTotpStore(dir);
    expect(again.secret('admin1')).toBe(store.secret('admin1'));
    const { mode } = await import('node:fs').then((fs) => fs.statSync(join(dir, 'totp.json')));
    expect(mode & 0o077).toBe(0);
    expect(JSON.parse(await readFile(join(dir, 'totp.json'), 'utf8'))).toHaveProperty('user1.secret', s1);
  });
});
