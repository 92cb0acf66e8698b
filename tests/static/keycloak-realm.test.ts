/**
 * The production realm export (infra/keycloak/realm-bionicpro.json) says what the code expects:
 * the same client ids and roles, PKCE S256, the worker-API audience, MFA evidence in tokens, LDAP
 * federation read-only with group → role mapping, TOTP required, and — data residency — one
 * federation per region that stamps the region on its users and puts it in tokens, while no
 * personal attribute (names, e-mail, phone, address) is read from the directories. Catches drift.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROLES } from '../../edge/auth/claims.ts';
import { parseEdgeConfig } from '../../shared/config.ts';
import { REGION_ID } from '../../shared/regions/config.ts';

const realm = JSON.parse(readFileSync(join(import.meta.dirname, '../../infra/keycloak/realm-bionicpro.json'), 'utf8'));
const defaults = parseEdgeConfig({
  UPSTASH_REDIS_REST_URL: 'http://kv.test', UPSTASH_REDIS_REST_TOKEN: 'x'.repeat(16), S3_ACCESS_KEY_ID: 'k', S3_SECRET_ACCESS_KEY: 's',
  OIDC_ISSUER: 'https://sso.example/realms/bionicpro', OIDC_CLIENT_SECRET: 'x'.repeat(16), SESSION_KEYS: `k1:${'A'.repeat(43)}`,
}).auth!;
interface Mapper { name: string; providerId: string; config: Record<string, string[] | undefined> }
interface Federation { name: string; config: Record<string, string[]>; subComponents: Record<string, Mapper[]> }
const federations: Federation[] = realm.components['org.keycloak.storage.UserStorageProvider'];
const mappersOf = (f: Federation) => f.subComponents['org.keycloak.storage.ldap.mappers.LDAPStorageMapper'] ?? [];
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
    for (const ldap of federations) {
      expect(ldap.config.editMode).toEqual(['READ_ONLY']);
      expect(ldap.config.uuidLDAPAttribute).toEqual(['entryUUID']);
      const roles = mappersOf(ldap).find((m) => m.providerId === 'role-ldap-mapper')!;
      expect(roles.config).toMatchObject({ mode: ['READ_ONLY'], 'use.realm.roles.mapping': ['true'], 'role.name.ldap.attribute': ['cn'] });
    }
    expect(realm.requiredActions.find((a: { alias: string }) => a.alias === 'CONFIGURE_TOTP')).toMatchObject({ enabled: true, defaultAction: true });
    const second = realm.authenticationFlows.find((f: { alias: string }) => f.alias === 'bionic second factor');
    expect(second.authenticationExecutions.some((e: { authenticator?: string; requirement: string }) => e.authenticator === 'auth-otp-form' && e.requirement === 'REQUIRED')).toBe(true);
    expect(realm.browserFlow).toBe('bionic browser');
    expect(realm).toMatchObject({ bruteForceProtected: true, revokeRefreshToken: true, otpPolicyCodeReusable: false, sslRequired: 'all' });
  });

  it('has one LDAP federation per region, each on its own server, stamping its region on its users', () => {
    const regions = federations.map((f) => {
      const hardcoded = mappersOf(f).filter((m) => m.providerId === 'hardcoded-attribute-mapper' && m.config['user.model.attribute']?.[0] === 'region');
      expect(hardcoded, f.name).toHaveLength(1);
      const region = hardcoded[0]!.config['attribute.value']![0]!;
      expect(region).toMatch(REGION_ID);
      expect(f.name).toBe(`bionicpro-ldap-${region}`);
      return region;
    });
    expect(regions.sort()).toEqual(['eu', 'ru']);
    expect(new Set(federations.map((f) => f.config.connectionUrl?.[0])).size).toBe(federations.length);
    expect(federations.every((f) => f.config.connectionUrl?.[0]?.startsWith('ldaps://'))).toBe(true);
  });

  it('reads no personal attribute from the directories, and puts the region in ID and access tokens', () => {
    const personal = /^(givenName|sn|cn|mail|telephoneNumber|mobile|homePhone|postalAddress|homePostalAddress|street|l|st|postalCode|displayName|jpegPhoto)$/i;
    for (const f of federations) {
      const attrs = mappersOf(f).flatMap((m) => m.config['ldap.attribute'] ?? []);
      expect(attrs.filter((a) => personal.test(a)), f.name).toEqual([]);
      expect(mappersOf(f).map((m) => m.providerId).sort(), f.name).toEqual(['hardcoded-attribute-mapper', 'role-ldap-mapper', 'user-attribute-ldap-mapper']);
    }
    const region = client(defaults.clientId).protocolMappers.find((m: { name: string }) => m.name === 'region');
    expect(region).toMatchObject({ protocolMapper: 'oidc-usermodel-attribute-mapper' });
    expect(region.config).toMatchObject({ 'user.attribute': 'region', 'claim.name': 'region', 'id.token.claim': 'true', 'access.token.claim': 'true' });
    // Users without names or e-mail must not be stopped by "update your profile".
    expect(realm.requiredActions.find((a: { alias: string }) => a.alias === 'VERIFY_PROFILE')).toMatchObject({ enabled: false });
    const [profile] = realm.components['org.keycloak.userprofile.UserProfileProvider'];
    const attributes = JSON.parse(profile.config['kc.user.profile.config'][0]).attributes as { name: string; required?: unknown; permissions: { edit: string[] } }[];
    expect(attributes.filter((a) => a.required).map((a) => a.name)).toEqual([]);
    expect(attributes.find((a) => a.name === 'region')!.permissions.edit).toEqual([]);
  });
});
