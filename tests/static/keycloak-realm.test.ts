/**
 * The production realm export (infra/keycloak/realm-bionicpro.json) says what the code expects:
 * the same client ids and roles, PKCE S256, the worker-API audience, MFA evidence in tokens, LDAP
 * federation read-only with group → role mapping, TOTP required. Catches drift between the two.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROLES } from '../../edge/auth/claims.ts';
import { parseEdgeConfig } from '../../shared/config.ts';

const realm = JSON.parse(readFileSync(join(import.meta.dirname, '../../infra/keycloak/realm-bionicpro.json'), 'utf8'));
const defaults = parseEdgeConfig({
  UPSTASH_REDIS_REST_URL: 'http://kv.test', UPSTASH_REDIS_REST_TOKEN: 'x'.repeat(16), S3_ACCESS_KEY_ID: 'k', S3_SECRET_ACCESS_KEY: 's',
  OIDC_ISSUER: 'https://sso.example/realms/bionicpro', OIDC_CLIENT_SECRET: 'x'.repeat(16), SESSION_KEYS: `k1:${'A'.repeat(43)}`,
}).auth!;
const client = (id: string) => realm.clients.find((c: { clientId: string }) => c.clientId === id);

describe('Keycloak realm export', () => {
  it('is the realm the issuer names, with the platform roles', () => {
    expect(defaults.issuer.endsWith(`/realms/${realm.realm}`)).toBe(true);
    expect(realm.roles.realm.map((r: { name: string }) => r.name).sort()).toEqual([...ROLES].sort());
  });

  it('has the BFF as a confidential client with PKCE S256, no implicit or password grants', () => {
    const bff = client(defaults.clientId);
    expect(bff).toMatchObject({ publicClient: false, standardFlowEnabled: true, implicitFlowEnabled: false, directAccessGrantsEnabled: false });
    expect(bff.attributes['pkce.code.challenge.method']).toBe('S256');
    expect(bff.redirectUris.every((u: string) => u.startsWith('https://') && u.endsWith('/auth/callback'))).toBe(true);
    expect(bff.attributes['post.logout.redirect.uris']).toMatch(/\/auth\/logged-out$/);
  });

  it('puts the worker API in the access token audience and MFA evidence in the tokens', () => {
    const bff = client(defaults.clientId);
    const audience = bff.protocolMappers.find((m: { protocolMapper: string }) => m.protocolMapper === 'oidc-audience-mapper');
    expect(audience.config['included.client.audience']).toBe(defaults.audience);
    expect(audience.config['access.token.claim']).toBe('true');
    expect(client(defaults.audience)).toBeTruthy();
    expect(bff.protocolMappers.some((m: { protocolMapper: string }) => m.protocolMapper === 'oidc-amr-mapper')).toBe(true);
    expect(bff.attributes['minimum.acr.value']).toBe(defaults.mfaAcrValues[0]);
    expect(JSON.parse(realm.attributes['acr.loa.map'])).toHaveProperty(defaults.mfaAcrValues[0]!);
  });

  it('federates LDAP read-only with group → realm-role mapping and requires TOTP', () => {
    const [ldap] = realm.components['org.keycloak.storage.UserStorageProvider'];
    expect(ldap.config.editMode).toEqual(['READ_ONLY']);
    expect(ldap.config.uuidLDAPAttribute).toEqual(['entryUUID']);
    const roles = ldap.subComponents['org.keycloak.storage.ldap.mappers.LDAPStorageMapper'].find((m: { providerId: string }) => m.providerId === 'role-ldap-mapper');
    expect(roles.config).toMatchObject({ mode: ['READ_ONLY'], 'use.realm.roles.mapping': ['true'], 'role.name.ldap.attribute': ['cn'] });
    expect(realm.requiredActions.find((a: { alias: string }) => a.alias === 'CONFIGURE_TOTP')).toMatchObject({ enabled: true, defaultAction: true });
    const second = realm.authenticationFlows.find((f: { alias: string }) => f.alias === 'bionic second factor');
    expect(second.authenticationExecutions.some((e: { authenticator?: string; requirement: string }) => e.authenticator === 'auth-otp-form' && e.requirement === 'REQUIRED')).toBe(true);
    expect(realm.browserFlow).toBe('bionic browser');
    expect(realm).toMatchObject({ bruteForceProtected: true, revokeRefreshToken: true, otpPolicyCodeReusable: false, sslRequired: 'all' });
  });
});
