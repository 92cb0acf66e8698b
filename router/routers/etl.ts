/**
 * The ETL domain (worker-served): trigger a run, read the run history, read the status. For
 * admins and ML engineers; the worker plugs its ETL in as `ports.etl` (workers/etl).
 *
 * The ETL runs per region. `region` may be omitted when there is one; with several, `run` and
 * `status` without a region act on every region (`{ regions: [...] }`, one answer each) and `runs`
 * lists every region's runs. A region the ETL does not run for is BAD_REQUEST.
 */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { EtlUnknownRegionError } from '../../shared/etl/port.ts';
import type { RouterContext } from '../context.ts';
import { roleProcedure, router } from '../trpc.ts';

const etlProcedure = roleProcedure('admin', 'ml_engineer');
const region = z.string().min(1).max(16).optional();

function etlOf(ctx: RouterContext) {
  if (!ctx.ports.etl) throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'The ETL is not available on this host' });
  return ctx.ports.etl;
}

/** Unknown regions are the caller's mistake: BAD_REQUEST with the message naming the known ones. */
async function answer<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof EtlUnknownRegionError) throw new TRPCError({ code: 'BAD_REQUEST', message: err.message, cause: err });
    throw err;
  }
}

export const etlRouter = router({
  /**
   * Runs the incremental job now and answers when it ends: `succeeded` with the run, `failed` with
   * the error and when it will be retried, or `skipped` when another run is in progress — each with
   * its `region`; several regions without `region`: `{ regions: [...] }`.
   */
  run: etlProcedure
    .input(z.object({ region }).default({}))
    .mutation(async ({ ctx, input }) => answer(() => etlOf(ctx).run({ triggeredBy: ctx.identity.userId, region: input.region }))),
  /** Run history, newest first; pass `nextCursor` back as `before` for the next page. */
  runs: etlProcedure
    .input(z.object({ limit: z.number().int().min(1).max(100).default(20), before: z.number().int().positive().optional(), region }).default({}))
    .query(async ({ ctx, input }) => answer(() => etlOf(ctx).runs(input))),
  /** Watermark, the run in progress, the last run and last success, the schedule (per region). */
  status: etlProcedure
    .input(z.object({ region }).default({}))
    .query(async ({ ctx, input }) => answer(() => etlOf(ctx).status(input))),
});
