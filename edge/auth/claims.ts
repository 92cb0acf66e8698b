/**
 * What the platform reads from Keycloak-shaped tokens: the identity (subject, username, realm roles,
 * region) and the evidence of a second factor. Shared by the edge (at login and refresh) and the
 * workers (on every call), so both see the same identity for the same token.
 */
import type { JWTPayload } from 'jose';
import type { Identity, Role } from '../../router/context.ts';
import { REGION_ID } from '../../shared/regions/config.ts';

export const ROLES: readonly Role[] = ['prosthesis_user', 'crm_operator', 'ml_engineer', 'admin'];

/** Authentication methods (RFC 8176) that count as a second factor beside a password. */
export const SECOND_FACTOR_AMR = ['otp', 'mfa', 'hwk', 'swk', 'sms', 'fpt', 'face', 'iris'] as const;

export class ClaimsError extends Error {
  override readonly name = 'ClaimsError';
}

const stringArray = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/**
 * Maps verified access-token claims to an {@link Identity}. Roles come from `realm_access.roles`;
 * realm roles the platform does not know (Keycloak adds `offline_access`, `uma_authorization`, …) are dropped.
 */
export function identityFromClaims(claims: JWTPayload): Identity {
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new ClaimsError('token has no subject');
  const realmAccess = claims.realm_access as { roles?: unknown } | undefined;
  const roles = stringArray(realmAccess?.roles).filter((r): r is Role => (ROLES as readonly string[]).includes(r));
  const username = typeof claims.preferred_username === 'string' ? claims.preferred_username : claims.sub;
  const identity: Identity = { userId: claims.sub, username, roles: [...new Set(roles)] };
  // The region routes personal data (shared/regions): a malformed one is no region, never a lookup key.
  if (typeof claims.region === 'string' && REGION_ID.test(claims.region)) identity.region = claims.region;
  return identity;
}

/**
 * True when the token proves a second factor: an `amr` entry such as `otp`, or an `acr` value the
 * deployment maps to multi-factor (Keycloak's step-up levels, e.g. `mfa` or `2`).
 */
export function hasSecondFactor(claims: JWTPayload, mfaAcrValues: readonly string[]): boolean {
  const amr = stringArray(claims.amr);
  if (amr.some((m) => (SECOND_FACTOR_AMR as readonly string[]).includes(m))) return true;
  return typeof claims.acr === 'string' && mfaAcrValues.includes(claims.acr);
}
