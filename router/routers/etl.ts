/**
 * The ETL domain (worker-served): trigger a run, read the run history, read the status. For
 * admins and ML engineers; the worker plugs its ETL in as `ports.etl` (workers/etl).
 */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import type { RouterContext } from '../context.ts';
import { roleProcedure, router } from '../trpc.ts';

const etlProcedure = roleProcedure('admin', 'ml_engineer');

function etlOf(ctx: RouterContext) {
  if (!ctx.ports.etl) throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'The ETL is not available on this host' });
  return ctx.ports.etl;
}

export const etlRouter = router({
  /**
   * Runs the incremental job now and answers when it ends: `succeeded` with the run, `failed` with
   * the error and when it will be retried, or `skipped` when another run is in progress.
   */
  run: etlProcedure.mutation(async ({ ctx }) => etlOf(ctx).run({ triggeredBy: ctx.identity.userId })),
  /** Run history, newest first; pass `nextCursor` back as `before` for the next page. */
  runs: etlProcedure
    .input(z.object({ limit: z.number().int().min(1).max(100).default(20), before: z.number().int().positive().optional() }).default({}))
    .query(async ({ ctx, input }) => etlOf(ctx).runs(input)),
  /** Watermark, the run in progress, the last run and last success, the schedule. */
  status: etlProcedure.query(async ({ ctx }) => etlOf(ctx).status()),
});
