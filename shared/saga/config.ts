/**
 * The order saga's part of a worker's configuration, keyed by environment variable names like
 * shared/config.ts. Spread {@link sagaEnv} into the worker's schema and map with {@link sagaConfigOf}.
 */
import { z } from 'zod';

export const sagaEnv = {
  /** How long a saga may wait for the profile or deals service before it is rejected and compensated. */
  SAGA_STEP_TIMEOUT_MS: z.coerce.number().int().min(100).max(7 * 24 * 3600 * 1000).default(30_000),
  /** How often each worker looks for sagas past their deadline. */
  SAGA_SWEEP_INTERVAL_MS: z.coerce.number().int().min(10).max(3_600_000).default(1_000),
};

export const sagaEnvSchema = z.object(sagaEnv);
export type SagaEnv = z.output<typeof sagaEnvSchema>;

export interface SagaConfig {
  stepTimeoutMs: number;
  sweepIntervalMs: number;
}

export const sagaConfigOf = (e: SagaEnv): SagaConfig => ({
  stepTimeoutMs: e.SAGA_STEP_TIMEOUT_MS,
  sweepIntervalMs: e.SAGA_SWEEP_INTERVAL_MS,
});

export const DEFAULT_SAGA_CONFIG: SagaConfig = sagaConfigOf(sagaEnvSchema.parse({}));
