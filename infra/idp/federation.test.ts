/**
 * Federation over regional directories on real slapd servers: each user signs in through their own
 * region's directory and gets its region; a name held by two directories is refused.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PASSWORD, DEMO_USERS } from '../dev/services/ldap-directory.ts';
import { startLdap, type LdapService } from '../dev/services/ldap.ts';
import { startRegionalDirectories } from '../dev/services/ldap-regions.ts';
import { federatedAccounts, type RegionalDirectory } from './federation.ts';

let dir: string;
let ldaps: LdapService[] = [];
const directoryOf = (l: LdapService): RegionalDirectory => ({ region: l.region!, url: l.url, bindDn: l.bindDn, bindPassword: l.bindPassword });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'idp-federation-'));
  ldaps = await startRegionalDirectories({ dataDir: dir, regions: ['ru', 'eu'] });
  // A rogue directory that also claims user1: the federation must not pick one.
  ldaps.push(await startLdap({ dataDir: join(dir, 'ldap-xx'), region: 'xx', users: [{ ...DEMO_USERS[0]!, region: 'xx' }] }));
}, 60_000);
afterAll(async () => {
  await Promise.all(ldaps.map((l) => l.stop()));
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('regional federation', () => {
  it('each directory holds only its region\'s people', async () => {
    const [ru, eu] = ldaps;
    const fed = federatedAccounts([directoryOf(ru!), directoryOf(eu!)]);
    for (const u of DEMO_USERS) {
      const a = await fed.authenticate(u.uid, DEMO_PASSWORD);
      expect(a, u.uid).toMatchObject({ username: u.uid, roles: u.roles, region: u.region });
      expect(await fed.findBySub(a!.sub)).toEqual(a);
    }
    const ruOnly = federatedAccounts([directoryOf(ru!)]);
    expect(await ruOnly.authenticate('user2', DEMO_PASSWORD)).toMatchObject({ region: 'ru' });
    expect(await ruOnly.authenticate('user1', DEMO_PASSWORD)).toBeNull();
    expect(await ruOnly.holds('user1')).toBe(false);
  });

  it('accounts carry no names or e-mail', async () => {
    const fed = federatedAccounts(ldaps.slice(0, 2).map(directoryOf));
    expect(Object.keys((await fed.authenticate('user1', DEMO_PASSWORD))!).sort()).toEqual(['otpExempt', 'region', 'roles', 'sub', 'username']);
  });

  it('refuses a user two directories claim, and logs it', async () => {
    const logged: unknown[] = [];
    const fed = federatedAccounts([directoryOf(ldaps[1]!), directoryOf(ldaps[2]!)], (msg, fields) => logged.push({ msg, ...fields }));
    expect(await fed.authenticate('user1', DEMO_PASSWORD)).toBeNull();
    expect(logged).toEqual([expect.objectContaining({ regions: ['eu', 'xx'] })]);
    expect(await fed.authenticate('user3', DEMO_PASSWORD)).toMatchObject({ region: 'eu' });
  });
});
