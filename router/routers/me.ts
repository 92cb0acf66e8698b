import { authedProcedure, router } from '../trpc.ts';

/** The caller's own identity: profile and roles, never tokens. */
export const meRouter = router({
  get: authedProcedure.query(({ ctx }) => ({
    userId: ctx.identity.userId,
    username: ctx.identity.username,
    roles: ctx.identity.roles,
    region: ctx.identity.region ?? null,
  })),
});
