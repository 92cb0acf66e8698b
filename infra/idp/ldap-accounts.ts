/**
 * Users come from LDAP, as with Keycloak's LDAP user federation: look the user up with the
 * read-only service account, then bind as the user's DN to check the password. Roles are the
 * `cn` of the role groups (`ou=roles`) that list the user as `member` — Keycloak's role-LDAP mapper.
 * Filters are built as objects, never by string concatenation, so a username cannot inject LDAP syntax.
 *
 * Data residency: only authentication attributes are read (uid, entryUUID, group memberships) —
 * never names, e-mail or other personal attributes, so none can reach a token. A regional
 * directory's `region` is fixed by configuration (Keycloak: a hardcoded-attribute mapper per
 * federation); a directory without one falls back to the entry's `l` attribute.
 */
import { AndFilter, Client, EqualityFilter, InvalidCredentialsError, type Entry } from 'ldapts';

export interface Account {
  /** Stable subject: LDAP `entryUUID` (Keycloak also keys federated users by it). */
  sub: string;
  username: string;
  region: string | null;
  roles: string[];
  /** Member of the policy group that lets a user finish login without a second factor. */
  otpExempt: boolean;
}

export interface LdapAccountsOptions {
  url: string;
  bindDn: string;
  bindPassword: string;
  baseDn: string;
  /** The region every account of this directory belongs to. */
  region?: string;
  otpExemptGroup?: string;
}

export interface LdapAccounts {
  /** The account when the password is right; null for unknown users and wrong passwords alike. */
  authenticate(username: string, password: string): Promise<Account | null>;
  findBySub(sub: string): Promise<Account | null>;
  /** Whether the directory has this user (no password involved: decides which directory to ask). */
  holds(username: string): Promise<boolean>;
}

// `l` (the entry's own region) only matters for a directory without a configured region.
const userAttrs = (region: string | undefined) => (region ? ['uid', 'entryUUID'] : ['uid', 'entryUUID', 'l']);
const first = (v: Entry[string] | undefined): string | null => {
  const x = Array.isArray(v) ? v[0] : v;
  return x === undefined ? null : String(x);
};

export function ldapAccounts(opts: LdapAccountsOptions): LdapAccounts {
  const people = `ou=people,${opts.baseDn}`;
  const exemptDn = `cn=${opts.otpExemptGroup ?? 'otp-exempt'},ou=groups,${opts.baseDn}`;

  async function asReader<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const client = new Client({ url: opts.url, timeout: 5000, connectTimeout: 5000 });
    try {
      await client.bind(opts.bindDn, opts.bindPassword);
      return await fn(client);
    } finally {
      await client.unbind().catch(() => {});
    }
  }

  async function toAccount(c: Client, e: Entry): Promise<Account> {
    const groups = await c.search(opts.baseDn, {
      filter: new AndFilter({ filters: [new EqualityFilter({ attribute: 'objectClass', value: 'groupOfNames' }), new EqualityFilter({ attribute: 'member', value: e.dn })] }),
      attributes: ['cn'],
    });
    const roleSuffix = `,ou=roles,${opts.baseDn}`.toLowerCase();
    return {
      sub: first(e.entryUUID) ?? e.dn,
      username: first(e.uid) ?? '',
      region: opts.region ?? first(e.l),
      roles: groups.searchEntries.filter((g) => g.dn.toLowerCase().endsWith(roleSuffix)).map((g) => first(g.cn) ?? '').filter(Boolean),
      otpExempt: groups.searchEntries.some((g) => g.dn.toLowerCase() === exemptDn.toLowerCase()),
    };
  }

  async function findOne(c: Client, attribute: string, value: string): Promise<Entry | null> {
    const { searchEntries } = await c.search(people, {
      scope: 'one', filter: new EqualityFilter({ attribute, value }), attributes: userAttrs(opts.region), sizeLimit: 2,
    });
    return searchEntries.length === 1 ? searchEntries[0]! : null;
  }

  const validUsername = (username: string) => Boolean(username) && username.length <= 64;

  return {
    async holds(username) {
      if (!validUsername(username)) return false;
      return asReader(async (c) => (await findOne(c, 'uid', username)) !== null);
    },
    async authenticate(username, password) {
      // An empty password would be an "unauthenticated bind", which LDAP treats as success.
      if (!validUsername(username) || !password || password.length > 1024) return null;
      return asReader(async (c) => {
        const entry = await findOne(c, 'uid', username);
        if (!entry) return null;
        const user = new Client({ url: opts.url, timeout: 5000, connectTimeout: 5000 });
        try {
          await user.bind(entry.dn, password);
        } catch (err) {
          if (err instanceof InvalidCredentialsError) return null;
          throw err;
        } finally {
          await user.unbind().catch(() => {});
        }
        return toAccount(c, entry);
      });
    },
    async findBySub(sub) {
      if (!/^[0-9a-f-]{36}$/i.test(sub)) return null;
      return asReader(async (c) => {
        const entry = await findOne(c, 'entryUUID', sub);
        return entry ? toAccount(c, entry) : null;
      });
    },
  };
}
