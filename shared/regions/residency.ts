/**
 * The residency guard: every read or write of personal data names the region the data lives in,
 * and a caller from another region is refused. Refusals are logged as one structured line
 * (`residency.refused`) an auditor can search for; the line carries region ids, the subject id
 * and what was asked for — never the personal data itself.
 */
import { TRPCError } from '@trpc/server';
import type { Logger } from '../log.ts';
import { findRegion, type RegionsConfig } from './config.ts';

export type ResidencyReason = 'CROSS_REGION' | 'NO_REGION' | 'UNKNOWN_REGION';

/**
 * A request that would move personal data across regions (or whose region cannot be told).
 * It is a tRPC `FORBIDDEN` error, so a procedure that throws it answers 403 without any mapping;
 * HTTP routes outside tRPC answer {@link ResidencyError.httpStatus}.
 */
export class ResidencyError extends TRPCError {
  override readonly name = 'ResidencyError';
  readonly httpStatus = 403;
  constructor(
    readonly reason: ResidencyReason,
    readonly actorRegion: string | null,
    readonly dataRegion: string | null,
    readonly what: string,
  ) {
    super({ code: 'FORBIDDEN', message: messageOf(reason, actorRegion, dataRegion, what) });
  }
}

function messageOf(reason: ResidencyReason, actor: string | null, data: string | null, what: string): string {
  if (reason === 'CROSS_REGION') return `Data residency: ${what} of region ${data} cannot be used from region ${actor}`;
  if (reason === 'NO_REGION') return `Data residency: your sign-in names no region, so ${what} cannot be located`;
  return `Data residency: region ${actor ?? data} is not served here, so ${what} cannot be located`;
}

/** The fields of an identity or token that matter here (`Identity`, a JWT payload, a session). */
export interface RegionClaims { region?: unknown; userId?: unknown; sub?: unknown }

const subjectOf = (c: RegionClaims) => (typeof c.userId === 'string' ? c.userId : typeof c.sub === 'string' ? c.sub : undefined);

/**
 * The configured region an identity's personal data lives in: its `region` claim, which must be
 * one of the configured regions. With the implicit single region (no `REGIONS`), everyone is local.
 * Throws {@link ResidencyError} (`NO_REGION` / `UNKNOWN_REGION`) and logs `residency.refused`.
 */
export function regionOf(claims: RegionClaims, config: RegionsConfig, log?: Logger): string {
  if (config.implicit) return config.regions[0]!.id;
  const claimed = typeof claims.region === 'string' ? claims.region : null;
  if (claimed && findRegion(config, claimed)) return claimed;
  const err = new ResidencyError(claimed ? 'UNKNOWN_REGION' : 'NO_REGION', claimed, null, 'the signed-in user\'s data');
  logRefusal(err, log, subjectOf(claims));
  throw err;
}

/**
 * Refuses (throws {@link ResidencyError} `CROSS_REGION`, logs `residency.refused`) unless the actor
 * and the data are in the same region. `what` names the kind of data ("report", "customer",
 * "telemetry batch"), never its content: it goes to the log and to the caller.
 */
export function assertSameRegion(actorRegion: string, dataRegion: string, what: string, log?: Logger, subject?: string): void {
  if (actorRegion === dataRegion) return;
  const err = new ResidencyError('CROSS_REGION', actorRegion, dataRegion, what);
  logRefusal(err, log, subject);
  throw err;
}

/** Writes the one `residency.refused` line for a refusal (for guards built on this module). */
export function logRefusal(err: ResidencyError, log: Logger | undefined, subject?: string): void {
  log?.warn('residency.refused', {
    event: 'residency.refused', reason: err.reason, actorRegion: err.actorRegion, dataRegion: err.dataRegion, what: err.what,
    ...(subject ? { subject } : {}),
  });
}
