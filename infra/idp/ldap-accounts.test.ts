/**
 * Accounts from a real slapd seeded with the demo directory: password checks by bind, roles from
 * role groups, the policy group, and the directory's own protections (no anonymous access, no
 * readable password hashes, no filter injection through the username).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PASSWORD, DEMO_USERS } from '../dev/services/ldap-directory.ts';
import { startLdap, type LdapService } from '../dev/services/ldap.ts';
import { ldapAccounts, type LdapAccounts } from './ldap-accounts.ts';

let dir: string;
let ldap: LdapService;
let accounts: LdapAccounts;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ldap-accounts-'));
  ldap = await startLdap({ dataDir: join(dir, 'ldap') });
  accounts = ldapAccounts({ url: ldap.url, bindDn: ldap.bindDn, bindPassword: ldap.bindPassword, baseDn: ldap.baseDn });
}, 60_000);
afterAll(async () => {
  await ldap?.stop();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('LDAP accounts', () => {
  it('authenticates every demo user with the demo password and maps their roles', async () => {
    for (const u of DEMO_USERS) {
      const a = await accounts.authenticate(u.uid, DEMO_PASSWORD);
      expect(a, u.uid).toMatchObject({ username: u.uid, roles: u.roles, region: u.region, otpExempt: Boolean(u.otpExempt) });
      expect(a!.sub).toMatch(/^[0-9a-f-]{36}$/);
      expect(await accounts.findBySub(a!.sub)).toEqual(a);
    }
  });

  it('refuses wrong and empty passwords, unknown users and injection attempts alike', async () => {
    for (const [user, pass] of [['user1', 'wrong'], ['user1', ''], ['', DEMO_PASSWORD], ['nobody', DEMO_PASSWORD], ['*', DEMO_PASSWORD], ['user1)(uid=*', DEMO_PASSWORD], ['admin1*', DEMO_PASSWORD]]) {
      expect(await accounts.authenticate(user!, pass!), `${user}/${pass}`).toBeNull();
    }
    expect(await accounts.findBySub('not-a-uuid')).toBeNull();
    expect(await accounts.findBySub('00000000-0000-0000-0000-000000000000')).toBeNull();
  });

  it('the directory refuses anonymous binds and never shows password hashes, even to the reader', async () => {
    const anon = new Client({ url: ldap.url });
    await expect(anon.bind('', '')).rejects.toThrow();
    await expect(anon.search(ldap.baseDn, { filter: '(uid=user1)' })).rejects.toThrow();
    await anon.unbind();
    const reader = new Client({ url: ldap.url });
    await reader.bind(ldap.bindDn, ldap.bindPassword);
    const { searchEntries } = await reader.search(`ou=people,${ldap.baseDn}`, { filter: '(uid=user1)', attributes: ['*'] });
    expect(searchEntries).toHaveLength(1);
    expect(searchEntries[0]).not.toHaveProperty('userPassword');
    await reader.unbind();
  });

  it('keeps its data across a restart and answers again on a new start', async () => {
    const before = await accounts.authenticate('operator1', DEMO_PASSWORD);
    await ldap.stop();
    ldap = await startLdap({ dataDir: join(dir, 'ldap') });
    accounts = ldapAccounts({ url: ldap.url, bindDn: ldap.bindDn, bindPassword: ldap.bindPassword, baseDn: ldap.baseDn });
    expect(await accounts.authenticate('operator1', DEMO_PASSWORD)).toEqual(before);
  });
});
