/**
 * Retry policy defaults and backoff. Attempts are counted per message delivered on its own: a failed
 * batch is split so one bad message cannot use up its neighbours' attempts.
 */
import type { RetryPolicy } from '../ports/bus.ts';

/**
 * About a minute and a half of retries (0.2 s doubling to 30 s, 10 attempts) before a message is
 * dead-lettered: long enough to ride out a database failover, short enough not to stall a partition.
 */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maximumAttempts: 10,
  initialIntervalMs: 200,
  backoffCoefficient: 2,
  maximumIntervalMs: 30_000,
});

/** Fills in defaults and rejects nonsense (raw → defaults → validated once). */
export function resolveRetryPolicy(partial: Partial<RetryPolicy> = {}): RetryPolicy {
  const p = { ...DEFAULT_RETRY_POLICY, ...partial };
  const bad = (what: string) => new RangeError(`retry policy: ${what}`);
  if (!Number.isInteger(p.maximumAttempts) || p.maximumAttempts < 1) throw bad('maximumAttempts must be an integer ≥ 1');
  if (!(p.initialIntervalMs >= 0)) throw bad('initialIntervalMs must be ≥ 0');
  if (!(p.backoffCoefficient >= 1)) throw bad('backoffCoefficient must be ≥ 1');
  if (!(p.maximumIntervalMs >= p.initialIntervalMs)) throw bad('maximumIntervalMs must be ≥ initialIntervalMs');
  return p;
}

/** How long to wait after failed attempt number `attempt` (1-based) before the next one. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maximumIntervalMs, policy.initialIntervalMs * policy.backoffCoefficient ** Math.max(0, attempt - 1));
}
