import { authedProcedure, roleProcedure, router } from '../trpc.ts';

/**
 * Worker-side identity checks. `whoami` shows what the worker itself verified from the bearer token
 * the edge forwarded (not what the edge believes); `diagnostics` is the admins' view of the worker's
 * dependencies, with error details the public health check may one day stop showing.
 */
export const workerIdentityRouter = router({
  whoami: authedProcedure.query(({ ctx }) => ({
    userId: ctx.identity.userId,
    username: ctx.identity.username,
    roles: ctx.identity.roles,
    verifiedBy: ctx.host,
  })),
  diagnostics: roleProcedure('admin').query(async ({ ctx }) => ({ host: ctx.host, requestId: ctx.requestId, ...(await ctx.health()) })),
});
