/**
 * The development identity provider: oidc-provider mounted at `/realms/bionicpro` on a loopback
 * port, with Keycloak's URL layout, users in LDAP and TOTP as the second factor. Stands in for the
 * Keycloak realm in infra/keycloak/ on one machine; clients cannot tell the difference.
 * Users come from one directory (`ldapUrl`, …) or from one directory per region (`directories`,
 * federated by ./federation.ts); either way tokens carry the user's `region`.
 */
import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEMO_USERS, type DemoUser } from '../dev/services/ldap-directory.ts';
import { freePort } from '../dev/free-port.ts';
import type { RunningService } from '../dev/services/types.ts';
import { interactionHandler } from './interactions.ts';
import { loadOrCreateKeys } from './keys.ts';
import { DEFAULT_BASE_DN, federatedAccounts, type RegionalDirectory } from './federation.ts';
import { ldapAccounts } from './ldap-accounts.ts';
import { createProvider, type IdpClient } from './provider.ts';
import { openTotpStore } from './totp-store.ts';

export const REALM = 'bionicpro';
export const DEFAULT_AUDIENCE = 'bionic-worker-api';
/** Demo users enrolled in TOTP on first start; the rest (user3) enrol on their first sign-in. */
export const preEnrolledOf = (users: readonly DemoUser[]) => users.filter((u) => !u.otpExempt && u.uid !== 'user3').map((u) => u.uid);
export const PRE_ENROLLED = preEnrolledOf(DEMO_USERS);

export interface DevIdpOptions {
  dataDir: string;
  port?: number;
  /** Host name in the issuer URL (the server always listens on 127.0.0.1). */
  hostname?: string;
  /** One directory for everyone (region from each entry's `l`); or use `directories`. */
  ldapUrl?: string;
  ldapBindDn?: string;
  ldapBindPassword?: string;
  ldapBaseDn?: string;
  /** One directory per region, federated; the region claim is the directory's. */
  directories?: RegionalDirectory[];
  clients: IdpClient[];
  audience?: string;
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  preEnrol?: readonly string[];
  maxPasswordFailures?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface DevIdp extends RunningService {
  readonly issuer: string;
  readonly port: number;
  /** A user's confirmed TOTP secret (base32) — for tests and the demo CLI, never served over HTTP. */
  totpSecret(username: string): string | null;
  /** A not-yet-used code for the user, and when it becomes acceptable (ms epoch). */
  totpCode(username: string): { code: string; validFromMs: number };
  /** Token endpoint calls that succeeded, by grant type; revocations. */
  counts(): { authorization_code: number; refresh_token: number; revocations: number };
}

export async function startDevIdp(opts: DevIdpOptions): Promise<DevIdp> {
  await mkdir(opts.dataDir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const mountPath = `/realms/${REALM}`;
  const issuer = `http://${opts.hostname ?? '127.0.0.1'}:${port}${mountPath}`;
  const keys = await loadOrCreateKeys(opts.dataDir);
  const totp = openTotpStore(opts.dataDir);
  await totp.preEnrol(opts.preEnrol ?? PRE_ENROLLED);
  const accounts = accountsOf(opts);
  const provider = createProvider({
    issuer, mountPath, clients: opts.clients, accounts, keys, audience: opts.audience ?? DEFAULT_AUDIENCE,
    accessTokenTtlSeconds: opts.accessTokenTtlSeconds ?? 300, refreshTokenTtlSeconds: opts.refreshTokenTtlSeconds ?? 30 * 60,
  });
  const counts = { authorization_code: 0, refresh_token: 0, revocations: 0 };
  provider.on('grant.success', (ctx: { oidc: { params?: { grant_type?: string } } }) => {
    const gt = ctx.oidc.params?.grant_type;
    if (gt === 'authorization_code' || gt === 'refresh_token') counts[gt] += 1;
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'revocation' && ctx.status === 200) counts.revocations += 1;
  });
  for (const event of ['server_error', 'grant.error', 'revocation.error', 'end_session.error'] as const) {
    provider.on(event, (_ctx: unknown, err: Error) => opts.log?.(`idp ${event}`, { error: err.message }));
  }
  const interactions = interactionHandler({ provider, accounts, totp, mountPath, maxPasswordFailures: opts.maxPasswordFailures });
  const callback = provider.callback();

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (path.startsWith(interactions.prefix)) {
      interactions.handle(req, res, path, clientIp(req)).catch((err: Error) => {
        opts.log?.('idp interaction failed', { error: err.message });
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('Sign-in failed unexpectedly.');
      });
      return;
    }
    if (path === mountPath || path.startsWith(`${mountPath}/`)) {
      // Express-style mounting: oidc-provider reads the mount path from `originalUrl`.
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = req.url;
      req.url = req.url!.slice(mountPath.length) || '/';
      callback(req, res);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => server.once('close', () => resolve({ code: 0, signal: null })));

  return {
    name: 'idp',
    url: issuer,
    issuer,
    port: (server.address() as AddressInfo).port,
    exited,
    totpSecret: (u) => totp.secret(u),
    totpCode: (u) => totp.nextCode(u),
    counts: () => ({ ...counts }),
    async stop() {
      if (!server.listening) return;
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
    },
  };
}

function accountsOf(opts: DevIdpOptions) {
  if (opts.directories?.length) {
    if (opts.ldapUrl) throw new Error('startDevIdp: give either ldapUrl or directories, not both');
    return federatedAccounts(opts.directories, opts.log);
  }
  if (!opts.ldapUrl || !opts.ldapBindDn || !opts.ldapBindPassword) throw new Error('startDevIdp: ldapUrl, ldapBindDn and ldapBindPassword (or directories) are required');
  return ldapAccounts({ url: opts.ldapUrl, bindDn: opts.ldapBindDn, bindPassword: opts.ldapBindPassword, baseDn: opts.ldapBaseDn ?? DEFAULT_BASE_DN });
}

function clientIp(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}
