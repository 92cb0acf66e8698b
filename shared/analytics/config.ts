/**
 * The analytics part of a worker's configuration (spread into the worker schema in shared/config.ts):
 * the key pseudonyms for cross-region analytics are derived with. A secret: never logged, never sent
 * to ClickHouse (workers/analytics/pseudonym.ts).
 */
import { z } from 'zod';
import { secret } from '../config-fields.ts';

export const analyticsEnv = {
  /** HMAC key of the pseudonyms in the central analytics table; changing it starts new pseudonyms. */
  ANALYTICS_PSEUDONYM_KEY: secret(16).optional(),
};

/**
 * Development key, used when `ANALYTICS_PSEUDONYM_KEY` is unset outside production. It is public, so
 * its pseudonyms protect nothing: production with `REGIONS` refuses to start without a key of its own
 * ({@link analyticsKeyProblem}); production without `REGIONS` and without a key publishes no analytics.
 */
export const DEV_PSEUDONYM_KEY = 'bionicpro-development-analytics-pseudonym-key';

export interface AnalyticsConfig {
  /** `null`: pseudonymised analytics are off (production without a key). */
  pseudonymKey: string | null;
}

interface AnalyticsEnv { BIONIC_ENV: string; ANALYTICS_PSEUDONYM_KEY?: string; REGIONS?: string[] }

export function analyticsConfigOf(e: AnalyticsEnv): AnalyticsConfig {
  return { pseudonymKey: e.ANALYTICS_PSEUDONYM_KEY ?? (e.BIONIC_ENV === 'production' ? null : DEV_PSEUDONYM_KEY) };
}

/** Why the environment is unacceptable for analytics, if it is. */
export function analyticsKeyProblem(e: AnalyticsEnv): string | undefined {
  if (e.BIONIC_ENV === 'production' && e.REGIONS && !e.ANALYTICS_PSEUDONYM_KEY) return 'is required in production when REGIONS is set';
  return undefined;
}
