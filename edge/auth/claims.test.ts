import { describe, expect, it } from 'vitest';
import { ClaimsError, hasSecondFactor, identityFromClaims } from './claims.ts';

describe('identity from Keycloak-shaped claims', () => {
  it('maps sub, preferred_username, known realm roles and region', () => {
    expect(identityFromClaims({
      sub: 'f3c1', preferred_username: 'user1', region: 'eu',
      realm_access: { roles: ['prosthesis_user', 'offline_access', 'uma_authorization', 'admin', 'admin'] },
    })).toEqual({ userId: 'f3c1', username: 'user1', roles: ['prosthesis_user', 'admin'], region: 'eu' });
  });

  it('treats missing or malformed roles as none, and refuses a token without a subject', () => {
    expect(identityFromClaims({ sub: 's' }).roles).toEqual([]);
    expect(identityFromClaims({ sub: 's', realm_access: { roles: 'admin' } }).roles).toEqual([]);
    expect(identityFromClaims({ sub: 's', realm_access: { roles: [1, null, 'admin'] } }).roles).toEqual(['admin']);
    expect(() => identityFromClaims({ preferred_username: 'x' })).toThrow(ClaimsError);
  });

  it('keeps only a well-formed region claim', () => {
    expect(identityFromClaims({ sub: 's', region: 'ru' }).region).toBe('ru');
    for (const region of ['RU', 'r', 'eu/../x', 'eu,ru', 42, '']) expect(identityFromClaims({ sub: 's', region }).region, String(region)).toBeUndefined();
  });
});

describe('second-factor evidence', () => {
  it('accepts amr entries for a second factor or a configured acr', () => {
    expect(hasSecondFactor({ amr: ['pwd', 'otp'] }, [])).toBe(true);
    expect(hasSecondFactor({ amr: ['hwk'] }, [])).toBe(true);
    expect(hasSecondFactor({ acr: 'mfa' }, ['mfa'])).toBe(true);
    expect(hasSecondFactor({ acr: '2' }, ['mfa', '2'])).toBe(true);
  });

  it('refuses password-only evidence, unknown acr values and malformed claims', () => {
    expect(hasSecondFactor({ amr: ['pwd'], acr: 'pwd' }, ['mfa'])).toBe(false);
    expect(hasSecondFactor({ acr: '1' }, ['mfa'])).toBe(false);
    expect(hasSecondFactor({ amr: 'otp' }, ['mfa'])).toBe(false);
    expect(hasSecondFactor({}, ['mfa'])).toBe(false);
  });
});
