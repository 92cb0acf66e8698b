/**
 * User federation over several regional LDAP directories (Keycloak: one LDAP user-federation
 * provider per region). A sign-in name is looked up in every directory with the read-only
 * accounts, in parallel; the password is then checked only against the one directory that holds
 * the user, so it never travels to another region. A name held by two directories is refused and
 * logged: which region owns a person must never be a guess.
 */
import { ldapAccounts, type Account, type LdapAccounts } from './ldap-accounts.ts';

/** One region's directory as the identity provider reaches it. */
export interface RegionalDirectory {
  region: string;
  url: string;
  bindDn: string;
  bindPassword: string;
  baseDn?: string;
}

export const DEFAULT_BASE_DN = 'dc=bionicpro,dc=local';

export function federatedAccounts(
  directories: readonly RegionalDirectory[],
  log?: (msg: string, fields?: Record<string, unknown>) => void,
): LdapAccounts {
  if (directories.length === 0) throw new Error('federation needs at least one directory');
  const dirs = directories.map((d) => ({
    region: d.region,
    accounts: ldapAccounts({ url: d.url, bindDn: d.bindDn, bindPassword: d.bindPassword, baseDn: d.baseDn ?? DEFAULT_BASE_DN, region: d.region }),
  }));

  /** The one directory holding `username`, or null (none, or ambiguous — logged). */
  async function owner(username: string): Promise<LdapAccounts | null> {
    const held = await Promise.all(dirs.map((d) => d.accounts.holds(username)));
    const owners = dirs.filter((_, i) => held[i]);
    if (owners.length > 1) log?.('idp federation: user is in several regional directories; refused', { regions: owners.map((o) => o.region) });
    return owners.length === 1 ? owners[0]!.accounts : null;
  }

  return {
    async holds(username) {
      return (await owner(username)) !== null;
    },
    async authenticate(username, password) {
      const dir = await owner(username);
      return dir ? dir.authenticate(username, password) : null;
    },
    async findBySub(sub): Promise<Account | null> {
      const found = (await Promise.all(dirs.map((d) => d.accounts.findBySub(sub)))).filter((a): a is Account => a !== null);
      return found.length === 1 ? found[0]! : null;
    },
  };
}
