/**
 * The reports feature's part of the configuration, keyed by environment variable names like
 * shared/config.ts: spread {@link reportsEdgeEnv} / {@link reportsWorkerEnv} into the schemas and
 * map with {@link reportsEdgeConfigOf} / {@link reportsWorkerConfigOf}.
 */
import { z } from 'zod';

export const reportsEdgeEnv = {
  /** Memory the edge's in-process cache of hot reports may hold, in bytes. */
  REPORTS_CACHE_MAX_BYTES: z.coerce.number().int().min(0).max(2 ** 31).default(32 * 1024 * 1024),
  /** `edge`: links signed by the edge and served through it; `store`: the object store's presigned URLs. */
  REPORTS_LINK_MODE: z.enum(['edge', 'store']).default('edge'),
  REPORTS_LINK_TTL_SECONDS: z.coerce.number().int().min(10).max(7 * 24 * 3600).default(300),
  /** How long a reader waits for a report being built (by this or another edge instance). */
  REPORTS_BUILD_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
  /** How long an edge instance reuses a user's report version before asking KV again; 0 asks every time. */
  REPORTS_VERSION_CACHE_SECONDS: z.coerce.number().int().min(0).max(300).default(5),
};

export const reportsWorkerEnv = {
  /** When the cleanup job deletes old report versions (cron, UTC); `off` disables it. */
  REPORTS_CLEANUP_CRON: z.string().regex(/^(off|(\S+\s+){4,5}\S+)$/, 'must be a cron expression or "off"').default('23 * * * *'),
  /** Objects of a non-current version are deleted once they are this old (readers may still hold them briefly). */
  REPORTS_OLD_VERSION_TTL_SECONDS: z.coerce.number().int().min(0).default(3600),
};

type EdgeEnv = z.output<z.ZodObject<typeof reportsEdgeEnv>>;
type WorkerEnv = z.output<z.ZodObject<typeof reportsWorkerEnv>>;

export interface ReportsEdgeConfig {
  cacheMaxBytes: number;
  linkMode: 'edge' | 'store';
  linkTtlSeconds: number;
  buildTimeoutMs: number;
  /** Seconds a version read from KV is reused in process (0: every read asks KV). */
  versionCacheSeconds: number;
}

export interface ReportsWorkerConfig {
  /** `null` when the cleanup job is off. */
  cleanupCron: string | null;
  oldVersionTtlSeconds: number;
}

export const reportsEdgeConfigOf = (e: EdgeEnv): ReportsEdgeConfig => ({
  cacheMaxBytes: e.REPORTS_CACHE_MAX_BYTES, linkMode: e.REPORTS_LINK_MODE,
  linkTtlSeconds: e.REPORTS_LINK_TTL_SECONDS, buildTimeoutMs: e.REPORTS_BUILD_TIMEOUT_MS,
  versionCacheSeconds: e.REPORTS_VERSION_CACHE_SECONDS,
});

export const reportsWorkerConfigOf = (e: WorkerEnv): ReportsWorkerConfig => ({
  cleanupCron: e.REPORTS_CLEANUP_CRON === 'off' ? null : e.REPORTS_CLEANUP_CRON,
  oldVersionTtlSeconds: e.REPORTS_OLD_VERSION_TTL_SECONDS,
});

export const DEFAULT_REPORTS_EDGE_CONFIG: ReportsEdgeConfig = reportsEdgeConfigOf(z.object(reportsEdgeEnv).parse({}));
