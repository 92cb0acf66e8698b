/**
 * The demo directory the embedded LDAP server is seeded with: people, role groups (group `cn` =
 * realm role, the shape Keycloak's role-LDAP mapper reads) and the `otp-exempt` policy group the
 * dev identity provider consults. Passwords are stored as salted SHA-1 (`{SSHA}`), as slapd expects.
 *
 * Data residency: every region has its own directory (its own slapd, the same base DN), holding only
 * that region's people ({@link demoUsersOf}); demo CRM customers are placed in regions by
 * {@link demoCustomerRegion}, so a customer and their sign-in account always share a region.
 */
import { createHash, randomBytes } from 'node:crypto';

export const LDAP_BASE_DN = 'dc=bionicpro,dc=local';
export const LDAP_PEOPLE_DN = `ou=people,${LDAP_BASE_DN}`;
export const LDAP_ROLES_DN = `ou=roles,${LDAP_BASE_DN}`;
export const LDAP_GROUPS_DN = `ou=groups,${LDAP_BASE_DN}`;
export const LDAP_ADMIN_DN = `cn=admin,${LDAP_BASE_DN}`;
/** Read-only service account the identity provider binds as (Keycloak's "Bind DN"). */
export const LDAP_READER_DN = `cn=idp-reader,ou=services,${LDAP_BASE_DN}`;
/** Members of this group may finish login with a password only (to prove the edge refuses them). */
export const OTP_EXEMPT_GROUP = 'otp-exempt';

/** Every demo user's password (development only; documented in the README, "Sign-in and sessions"). */
export const DEMO_PASSWORD = 'bionic-demo';

export const ROLES = ['prosthesis_user', 'crm_operator', 'ml_engineer', 'admin'] as const;

export interface DemoUser {
  uid: string;
  givenName: string;
  sn: string;
  roles: (typeof ROLES)[number][];
  /** The region whose directory holds the account. */
  region: string;
  otpExempt?: boolean;
}

export const DEMO_USERS: readonly DemoUser[] = [
  { uid: 'user1', givenName: 'Anna', sn: 'Keller', roles: ['prosthesis_user'], region: 'eu' },
  { uid: 'user2', givenName: 'Boris', sn: 'Orlov', roles: ['prosthesis_user'], region: 'ru' },
  { uid: 'user3', givenName: 'Clara', sn: 'Novak', roles: ['prosthesis_user'], region: 'eu' },
  { uid: 'operator1', givenName: 'Olga', sn: 'Petrova', roles: ['crm_operator'], region: 'ru' },
  { uid: 'analyst1', givenName: 'Aleksei', sn: 'Smirnov', roles: ['ml_engineer'], region: 'eu' },
  { uid: 'admin1', givenName: 'Ada', sn: 'Admin', roles: ['admin'], region: 'eu' },
  { uid: 'nomfa1', givenName: 'Nils', sn: 'Nofactor', roles: ['prosthesis_user'], region: 'eu', otpExempt: true },
];

/**
 * The region of demo customer `username` (`user1`, `user2`, …): a demo account's own region when it
 * is configured, otherwise round-robin over `regions` by the customer number. Deterministic, so the
 * launcher's seeding, linking and directories agree.
 */
export function demoCustomerRegion(username: string, regions: readonly string[]): string {
  const own = DEMO_USERS.find((u) => u.uid === username)?.region;
  if (own && regions.includes(own)) return own;
  const n = Number(/^user(\d+)$/.exec(username)?.[1] ?? 0);
  return regions[(Math.max(n, 1) - 1) % regions.length]!;
}

/**
 * The people of one region's directory: the demo accounts of that region; a region without any
 * (one added by configuration) gets one prosthesis user — the first demo customer placed there.
 */
export function demoUsersOf(region: string, regions: readonly string[]): DemoUser[] {
  const own = DEMO_USERS.filter((u) => u.region === region);
  if (own.length) return own;
  for (let n = 1; n <= 1000; n++) {
    if (demoCustomerRegion(`user${n}`, regions) === region) return [{ uid: `user${n}`, givenName: 'Demo', sn: `User ${n}`, roles: ['prosthesis_user'], region }];
  }
  return [];
}

/** `{SSHA}` hash of a password with a fresh 8-byte salt. */
export function sshaHash(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

const entry = (dn: string, attrs: [string, string][]) =>
  [`dn: ${dn}`, ...attrs.map(([k, v]) => (/^[\x20-\x7e]*$/.test(v) && !v.startsWith(' ') ? `${k}: ${v}` : `${k}:: ${Buffer.from(v).toString('base64')}`))].join('\n');

const userDn = (uid: string) => `uid=${uid},${LDAP_PEOPLE_DN}`;

/** The seed LDIF: organisation, units, the reader account, people, roles and policy groups. */
export function demoLdif(opts: { readerPassword: string; users?: readonly DemoUser[]; password?: string }): string {
  const users = opts.users ?? DEMO_USERS;
  const password = opts.password ?? DEMO_PASSWORD;
  const out = [
    entry(LDAP_BASE_DN, [['objectClass', 'dcObject'], ['objectClass', 'organization'], ['o', 'BionicPRO'], ['dc', 'bionicpro']]),
    ...['people', 'roles', 'groups', 'services'].map((ou) =>
      entry(`ou=${ou},${LDAP_BASE_DN}`, [['objectClass', 'organizationalUnit'], ['ou', ou]])),
    entry(LDAP_READER_DN, [
      ['objectClass', 'organizationalRole'], ['objectClass', 'simpleSecurityObject'], ['cn', 'idp-reader'],
      ['userPassword', sshaHash(opts.readerPassword)], ['description', 'Read-only bind account for the identity provider'],
    ]),
    ...users.map((u) => entry(userDn(u.uid), [
      ['objectClass', 'inetOrgPerson'], ['uid', u.uid], ['cn', `${u.givenName} ${u.sn}`], ['givenName', u.givenName],
      ['sn', u.sn], ['mail', `${u.uid}@bionicpro.example`], ['l', u.region], ['userPassword', sshaHash(password)],
    ])),
  ];
  // groupOfNames needs at least one member, so a role nobody holds is simply not created.
  for (const role of ROLES) {
    const members = users.filter((u) => u.roles.includes(role));
    if (members.length) out.push(entry(`cn=${role},${LDAP_ROLES_DN}`, [['objectClass', 'groupOfNames'], ['cn', role], ...members.map((m): [string, string] => ['member', userDn(m.uid)])]));
  }
  const exempt = users.filter((u) => u.otpExempt);
  if (exempt.length) {
    out.push(entry(`cn=${OTP_EXEMPT_GROUP},${LDAP_GROUPS_DN}`, [['objectClass', 'groupOfNames'], ['cn', OTP_EXEMPT_GROUP], ...exempt.map((m): [string, string] => ['member', userDn(m.uid)])]));
  }
  return out.join('\n\n') + '\n';
}

/** slapd.conf for a private server: mdb backend, no anonymous binds, passwords readable by nobody. */
export function slapdConf(opts: { dataDir: string; dbDir: string; adminPasswordHash: string }): string {
  return `# Generated by infra/dev/services/ldap.ts — private development directory.
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile ${opts.dataDir}/slapd.pid
argsfile ${opts.dataDir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
disallow bind_anon
require authc
password-hash {SSHA}
sizelimit 500

database mdb
maxsize 268435456
suffix "${LDAP_BASE_DN}"
rootdn "${LDAP_ADMIN_DN}"
rootpw ${opts.adminPasswordHash}
directory ${opts.dbDir}
index objectClass eq
index uid eq
index member eq
index entryUUID eq

access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.exact="${LDAP_READER_DN}" read
  by self read
  by * none
`;
}
