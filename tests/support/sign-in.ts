/**
 * Signs a user in through an edge and the development identity provider's real pages, as a
 * browser would: password form, then the one-time code when the provider asks for it. Shared by
 * the in-process auth stack and tests against a launched stack (which read the provider's TOTP
 * store from its data directory).
 */
import { DEMO_PASSWORD } from '../../infra/dev/services/ldap-directory.ts';
import { openTotpStore } from '../../infra/idp/totp-store.ts';
import type { CookieClient, Seen } from './cookie-client.ts';

/** A user's next unused one-time code, waiting for its time step when the current one is spent. */
export type TotpSource = (username: string) => Promise<string>;

/** Turns a `nextCode` (the dev provider's, or its store's) into a {@link TotpSource}. */
export function totpSource(nextCode: (username: string) => { code: string; validFromMs: number }): TotpSource {
  return async (username) => {
    const { code, validFromMs } = nextCode(username);
    const wait = validFromMs - Date.now();
    // The time step itself is the event: a used code becomes replaceable only in the next step.
    if (wait > 0) await new Promise((r) => setTimeout(r, wait + 50));
    return code;
  };
}

/** One-time codes of a launched stack's provider, from its data directory (re-read each time: the provider marks codes used there). */
export const launchedTotp = (idpDataDir: string): TotpSource => totpSource((u) => openTotpStore(idpDataDir).nextCode(u));

export async function signIn(
  client: CookieClient, edgeUrl: string, username: string, totp: TotpSource,
  o: { password?: string; returnTo?: string } = {},
): Promise<{ final: Seen; hops: Seen[] }> {
  const q = o.returnTo === undefined ? '' : `?returnTo=${encodeURIComponent(o.returnTo)}`;
  const start = await client.follow(`${edgeUrl}/auth/login${q}`);
  const afterPassword = await client.submit(start.final, '/password', { username, password: o.password ?? DEMO_PASSWORD });
  if (!afterPassword.final.body.includes('name="code"')) return afterPassword;
  return client.submit(afterPassword.final, '/otp', { code: await totp(username) });
}
