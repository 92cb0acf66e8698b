/**
 * Cross-region analytics (worker-served), for ML engineers and admins: the central, pseudonymised
 * daily statistics (workers/analytics). Rows carry a pseudonym, the region, the day, the prosthesis
 * model kind and metrics — no subject, username, chip id or name — so they may be read from any region.
 */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import type { AnalyticsService } from '../../shared/analytics/port.ts';
import type { RouterContext } from '../context.ts';
import { roleProcedure, router } from '../trpc.ts';

const analyticsProcedure = roleProcedure('admin', 'ml_engineer');

/** Longest range one query may span. */
export const MAX_ANALYTICS_DAYS = 366;
const DAY_MS = 86_400_000;

const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD')
  .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), 'is not a calendar date');

const query = z.object({
  from: day,
  to: day,
  region: z.string().min(1).max(16).optional(),
  modelKind: z.string().min(1).max(64).optional(),
}).superRefine((q, ctx) => {
  const span = (Date.parse(`${q.to}T00:00:00Z`) - Date.parse(`${q.from}T00:00:00Z`)) / DAY_MS;
  if (span < 0) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['to'], message: 'must not be before from' });
  else if (span >= MAX_ANALYTICS_DAYS) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['to'], message: `the range may span at most ${MAX_ANALYTICS_DAYS} days` });
});

function analyticsOf(ctx: RouterContext, region: string | undefined): AnalyticsService {
  const analytics = ctx.ports.analytics;
  if (!analytics) throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'Analytics are not available on this host (ANALYTICS_PSEUDONYM_KEY unset in production?)' });
  if (region !== undefined && !analytics.regions.includes(region)) {
    throw new TRPCError({ code: 'BAD_REQUEST', message: `Unknown region "${region}"; analytics cover: ${analytics.regions.join(', ')}` });
  }
  return analytics;
}

export const analyticsRouter = router({
  /**
   * Pseudonymised rows per person (pseudonym), region, UTC day and model kind over `[from, to]`,
   * ordered by day; at most `limit` (default 1000), `truncated` when more matched.
   */
  daily: analyticsProcedure
    .input(query.and(z.object({ limit: z.number().int().min(1).max(10_000).default(1000) })))
    .query(async ({ ctx, input }) => analyticsOf(ctx, input.region).daily(input)),
  /** Per region and day: distinct pseudonyms, devices, summed counts and measures weighted by actions. */
  summary: analyticsProcedure
    .input(query)
    .query(async ({ ctx, input }) => analyticsOf(ctx, input.region).summary(input)),
});
