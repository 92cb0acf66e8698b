/**
 * oidc-provider configured to look like a Keycloak realm to its clients: Keycloak's endpoint
 * paths, JWT access tokens for one API audience (resource indicators) carrying `realm_access.roles`,
 * `preferred_username`, `amr` and `acr`, refresh tokens rotated on use, PKCE required, revocation
 * and RP-initiated logout, first-party clients without a consent screen.
 */
import Provider, { errors, type GrantInstance, type ProviderContext } from 'oidc-provider';
import type { Account, LdapAccounts } from './ldap-accounts.ts';
import type { IdpKeys } from './keys.ts';
import { errorPage, loggedOutPage, logoutPage } from './pages.ts';

/** A confidential client registered in the realm (the edge BFF). */
export interface IdpClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
}

export interface ProviderOptions {
  issuer: string;
  /** URL path the provider is mounted under (`/realms/bionicpro`). */
  mountPath: string;
  clients: IdpClient[];
  accounts: LdapAccounts;
  keys: IdpKeys;
  /** `aud` of access tokens: the worker API. */
  audience: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
}

/** Keycloak's endpoint layout under `/realms/<realm>`. */
export const KEYCLOAK_ROUTES = {
  authorization: '/protocol/openid-connect/auth',
  token: '/protocol/openid-connect/token',
  jwks: '/protocol/openid-connect/certs',
  userinfo: '/protocol/openid-connect/userinfo',
  end_session: '/protocol/openid-connect/logout',
  revocation: '/protocol/openid-connect/revoke',
  introspection: '/protocol/openid-connect/token/introspect',
};

const SCOPES = 'openid profile email';
/**
 * oidc-provider needs an absolute URI as resource indicator; the `aud` claim is still the plain
 * API client id, as Keycloak's audience mapper writes it.
 */
const resourceOf = (audience: string) => `urn:bionicpro:resource:${audience}`;

export function createProvider(opts: ProviderOptions): Provider {
  // Data residency: tokens carry authentication attributes only — never names, e-mail, phone or address.
  const claimsOf = (a: Account) => ({
    sub: a.sub, preferred_username: a.username, region: a.region ?? undefined, realm_access: { roles: a.roles },
  });

  const provider = new Provider(opts.issuer, {
    clients: opts.clients.map((c) => ({
      client_id: c.clientId, client_secret: c.clientSecret, redirect_uris: c.redirectUris,
      post_logout_redirect_uris: c.postLogoutRedirectUris ?? [], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
    })),
    routes: KEYCLOAK_ROUTES,
    jwks: opts.keys.jwks,
    cookies: { keys: opts.keys.cookieKeys },
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    claims: {
      // Keycloak always puts these in the ID token; oidc-provider releases them per scope.
      openid: ['sub', 'acr', 'amr', 'auth_time', 'sid'], iss: null,
      // The standard scopes stay valid to request, but release no personal attributes (data residency).
      profile: ['preferred_username', 'region', 'realm_access'],
      email: [],
    },
    // Keycloak puts profile claims in the ID token even when an access token is issued.
    conformIdTokenClaims: false,
    acrValues: ['pwd', 'mfa'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      // A client may revoke and introspect only its own tokens.
      revocation: { enabled: true, allowedPolicy: (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) => token.clientId === client.clientId },
      introspection: { enabled: true, allowedPolicy: (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) => token.clientId === client.clientId },
      userinfo: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resourceOf(opts.audience),
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, indicator: string) => {
          if (indicator !== resourceOf(opts.audience)) throw new errors.InvalidTarget();
          return { scope: SCOPES, audience: opts.audience, accessTokenTTL: opts.accessTokenTtlSeconds, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx: ProviderContext, form: string) => { ctx.type = 'html'; ctx.body = logoutPage({ form, host: ctx.host }); },
        postLogoutSuccessSource: (ctx: ProviderContext) => { ctx.type = 'html'; ctx.body = loggedOutPage(); },
      },
    },
    async findAccount(_ctx: unknown, sub: string) {
      const account = await opts.accounts.findBySub(sub);
      if (!account) return undefined;
      return { accountId: account.sub, claims: () => claimsOf(account) };
    },
    // Keycloak-style access-token claims; roles are read from LDAP again on every refresh.
    async extraTokenClaims(ctx: ProviderContext, token: { accountId?: string; kind?: string }) {
      if (!token.accountId) return undefined;
      const account = await opts.accounts.findBySub(token.accountId);
      if (!account) return undefined;
      const source = ctx.oidc.entities.RefreshToken ?? ctx.oidc.entities.AuthorizationCode;
      return {
        preferred_username: account.username, realm_access: { roles: account.roles }, region: account.region ?? undefined,
        azp: ctx.oidc.client?.clientId, typ: 'Bearer', amr: source?.amr, acr: source?.acr,
      };
    },
    // First-party clients: the realm grants them the standard scopes without asking.
    async loadExistingGrant(ctx: ProviderContext): Promise<GrantInstance | undefined> {
      const { client, session, result } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      const grantId = result?.consent?.grantId ?? session.grantIdFor(client.clientId);
      const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      // A revoked grant (logout elsewhere, refresh-token reuse) is replaced, never asked about.
      if (existing) return existing;
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(SCOPES);
      grant.addOIDCClaims(['preferred_username', 'realm_access', 'region']);
      grant.addResourceScope(resourceOf(opts.audience), SCOPES);
      await grant.save();
      return grant;
    },
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }) => client.grantTypeAllowed('refresh_token'),
    // Always rotate: a refresh token works once, so a stolen one is detected on reuse.
    rotateRefreshToken: () => true,
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `${opts.mountPath}/login-actions/${interaction.uid}` },
    ttl: {
      AccessToken: opts.accessTokenTtlSeconds,
      AuthorizationCode: 60,
      IdToken: opts.accessTokenTtlSeconds,
      RefreshToken: opts.refreshTokenTtlSeconds,
      Interaction: 10 * 60,
      Session: 10 * 60 * 60,
      Grant: 10 * 60 * 60,
    },
    renderError: (ctx: ProviderContext, out: { error?: string; error_description?: string }) => {
      ctx.type = 'html';
      ctx.body = errorPage({ title: 'Sign-in problem', message: `${out.error ?? 'error'}: ${out.error_description ?? ''}` });
    },
  });
  return provider;
}
