/**
 * Links demo CRM customers to their sign-in accounts: a customer whose `username` matches an LDAP
 * `uid` gets that account's stable subject (`entryUUID`, the identity provider's `sub`) as
 * `idp_subject`, so the demo users see their own statistics and reports. Idempotent.
 * With regional directories, call it once per region: a region's CRM with that region's directory
 * (and a shared CRM with each directory in turn — their people are disjoint).
 */
import { Client } from 'ldapts';
import postgres from 'postgres';
import { LDAP_PEOPLE_DN } from './services/ldap-directory.ts';

export async function linkDemoCustomers(crmUrl: string, ldap: { url: string; bindDn: string; bindPassword: string }): Promise<number> {
  const client = new Client({ url: ldap.url });
  let accounts: { uid: string; sub: string }[];
  try {
    await client.bind(ldap.bindDn, ldap.bindPassword);
    const { searchEntries } = await client.search(LDAP_PEOPLE_DN, { scope: 'one', filter: '(uid=*)', attributes: ['uid', 'entryUUID'] });
    accounts = searchEntries.map((e) => ({ uid: String(e.uid), sub: String(e.entryUUID) })).filter((a) => a.uid && a.sub);
  } finally {
    await client.unbind();
  }
  if (accounts.length === 0) return 0;
  const sql = postgres(crmUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`
      UPDATE customers c SET idp_subject = a.sub
      FROM unnest(${accounts.map((a) => a.uid)}::text[], ${accounts.map((a) => a.sub)}::text[]) AS a(uid, sub)
      WHERE c.username = a.uid AND c.idp_subject IS DISTINCT FROM a.sub
      RETURNING c.id`;
    return rows.length;
  } finally {
    await sql.end();
  }
}
