/**
 * Edge-served reports. A user reads only their own (`list`, `get`, `link` take no user id);
 * `ml_engineer` and `admin` read other users' reports only through `listForUser` / `getForUser`,
 * which demand a reason and write an audit record before anything is read.
 */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { isValidUserId } from '../../shared/reports/keys.ts';
import { parsePeriod, periodInput, type ReportPeriod } from '../../shared/reports/period.ts';
import type { ReportDelivery } from '../../shared/reports/ports.ts';
import type { RouterContext } from '../context.ts';
import { authedProcedure, roleProcedure, router } from '../trpc.ts';
import { reportsCall } from './reports-errors.ts';

function delivery(ctx: RouterContext): ReportDelivery {
  const d = ctx.ports.reports;
  if (!d) throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'Reports are not served by this host' });
  return d;
}

function period(input: string): ReportPeriod {
  const p = parsePeriod(input);
  if (!p) throw new TRPCError({ code: 'BAD_REQUEST', message: `Not a report period: ${input}` });
  return p;
}

const byPeriod = z.object({ period: periodInput });
const otherUser = z.object({
  userId: z.string().min(1).max(128).refine(isValidUserId, 'not a valid user id'),
  /** Why the caller needs someone else's data: kept in the audit record. */
  reason: z.string().trim().min(5).max(500),
});

const privileged = roleProcedure('ml_engineer', 'admin');

export const reportsRouter = router({
  list: authedProcedure.query(({ ctx }) => reportsCall(() => delivery(ctx).list(ctx.identity.userId))),

  get: authedProcedure.input(byPeriod).query(async ({ ctx, input }) => {
    const served = await reportsCall(() => delivery(ctx).get(ctx.identity.userId, period(input.period)));
    return { report: served.report(), etag: served.etag, version: served.version };
  }),

  /** A short-lived download URL of the caller's report (no session needed to use it). */
  link: authedProcedure.input(byPeriod).query(({ ctx, input }) =>
    reportsCall(() => delivery(ctx).link(ctx.identity.userId, period(input.period)))),

  listForUser: privileged.input(otherUser).query(({ ctx, input }) => {
    const d = delivery(ctx);
    d.audit({ action: 'reports.list_other', owner: input.userId, reason: input.reason });
    return reportsCall(() => d.list(input.userId));
  }),

  getForUser: privileged.input(otherUser.merge(byPeriod)).query(async ({ ctx, input }) => {
    const d = delivery(ctx);
    const p = period(input.period);
    d.audit({ action: 'reports.read_other', owner: input.userId, period: p.id, reason: input.reason });
    const served = await reportsCall(() => d.get(input.userId, p));
    return { report: served.report(), etag: served.etag, version: served.version };
  }),
});
