/**
 * The one AppRouter. `edgeRouter` holds what the edge serves itself, `workerRouter` what the
 * worker pool serves (domains listed in paths.ts); their union is the type clients use.
 */
import { healthRouter, workerRouter as workerInfoRouter } from './routers/health.ts';
import { meRouter } from './routers/me.ts';
import { workerIdentityRouter } from './routers/worker-identity.ts';
import { mergeRouters, router } from './trpc.ts';

export const edgeRouter = router({
  health: healthRouter,
  me: meRouter,
});

export const workerRouter = router({
  worker: mergeRouters(workerInfoRouter, workerIdentityRouter),
});

export const appRouter = mergeRouters(edgeRouter, workerRouter);
export type AppRouter = typeof appRouter;
