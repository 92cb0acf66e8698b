/**
 * One directory per region (data residency): a private slapd per region under
 * `<dataDir>/ldap-<region>`, each seeded only with that region's demo people. Started side by side;
 * if one fails, the ones already running are stopped before the error propagates.
 */
import { join } from 'node:path';
import { demoUsersOf } from './ldap-directory.ts';
import { startLdap, type LdapService } from './ldap.ts';

/** Starts every region's directory; resolves in `regions` order. */
export async function startRegionalDirectories(opts: {
  dataDir: string;
  regions: readonly string[];
}): Promise<LdapService[]> {
  const running: LdapService[] = [];
  const results = await Promise.allSettled(opts.regions.map(async (region) => {
    const ldap = await startLdap({ dataDir: join(opts.dataDir, `ldap-${region}`), region, users: demoUsersOf(region, opts.regions) });
    running.push(ldap);
    return ldap;
  }));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(running.map((l) => l.stop().catch(() => {})));
    throw failed.reason;
  }
  return results.map((r) => (r as PromiseFulfilledResult<LdapService>).value);
}
