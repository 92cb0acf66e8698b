/**
 * Operations settings shared by the edge and the workers (metrics access, shutdown), keyed by
 * environment variable names like shared/config.ts. Spread {@link opsEnv} into a schema and map
 * with {@link opsConfigOf}.
 */
import { z } from 'zod';
import { secret } from '../config-fields.ts';

export const opsEnv = {
  /** Bearer token for `/metrics`; required in production, optional (open endpoint) otherwise. */
  METRICS_TOKEN: secret(16).optional(),
  /** How long a stopping process may finish in-flight requests and bus batches before it is forced. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(25_000),
};

export const opsEnvSchema = z.object(opsEnv);
export type OpsEnv = z.output<typeof opsEnvSchema>;

export interface OpsConfig {
  /** Absent: `/metrics` is open (development and test only; configuration refuses it in production). */
  metricsToken?: string;
  shutdownGraceMs: number;
}

export const opsConfigOf = (e: OpsEnv): OpsConfig => ({ metricsToken: e.METRICS_TOKEN, shutdownGraceMs: e.SHUTDOWN_GRACE_MS });

/** The production rule, for the entry points' cross-variable checks. */
export const metricsTokenProblem = (e: OpsEnv & { BIONIC_ENV: string }): string | null =>
  e.BIONIC_ENV === 'production' && !e.METRICS_TOKEN ? 'is required in production (protects /metrics)' : null;
