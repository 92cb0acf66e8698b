/**
 * Worker-served: `reportsBuilder.build` renders one report and stores it (see workers/reports).
 * The edge calls it on a cache miss with the reader's own bearer token, so the worker checks for
 * itself whose report this may be: the caller's own, or anyone's for `ml_engineer` / `admin`
 * (audit-logged). The edge never forwards this domain from clients (edge/reports/routes.ts).
 *
 * Data residency: the report is built from and stored in the caller's region (their verified
 * `region` claim). A privileged caller may build another user's report only when that user lives
 * in the caller's own region; otherwise the call is refused and logged (`residency.refused`).
 */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { parsePeriod, periodInput } from '../../shared/reports/period.ts';
import { assertSameRegion, regionOf } from '../../shared/regions/residency.ts';
import { authedProcedure, router } from '../trpc.ts';
import { reportsCall } from './reports-errors.ts';

const PRIVILEGED = ['ml_engineer', 'admin'] as const;

export const reportsBuilderRouter = router({
  build: authedProcedure
    .input(z.object({ userId: z.string().min(1).max(128), period: periodInput }))
    .mutation(async ({ ctx, input }) => {
      const builder = ctx.ports.reportBuilder;
      if (!builder) throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'This worker does not build reports' });
      const own = input.userId === ctx.identity.userId;
      if (!own && !ctx.identity.roles.some((r) => (PRIVILEGED as readonly string[]).includes(r))) {
        throw new TRPCError({ code: 'FORBIDDEN', message: 'You can only build your own reports' });
      }
      const period = parsePeriod(input.period);
      if (!period) throw new TRPCError({ code: 'BAD_REQUEST', message: `Not a report period: ${input.period}` });
      if (!own) {
        ctx.log.notice('audit', {
          audit: true, action: 'reports.build_other', actor: ctx.identity.userId, actorName: ctx.identity.username,
          actorRoles: ctx.identity.roles, owner: input.userId, period: period.id,
        });
      }
      const regions = ctx.ports.regions;
      const region = regions ? regionOf(ctx.identity, regions.config, ctx.log) : undefined;
      if (region && !own && builder.locate) {
        const owner = await reportsCall(() => builder.locate!(input.userId));
        if (!owner) throw new TRPCError({ code: 'NOT_FOUND', message: 'No customer with this id' });
        assertSameRegion(region, owner, 'report', ctx.log, input.userId);
      }
      const built = await reportsCall(() => builder.build(input.userId, period, region));
      return { key: built.key, version: built.version, etag: built.etag, body: built.body };
    }),
});
