/**
 * The one AppRouter. `edgeRouter` holds what the edge serves itself, `workerRouter` what the
 * worker pool serves (domains listed in paths.ts); their union is the type clients use.
 */
import { healthRouter, workerRouter as workerInfoRouter } from './routers/health.ts';
import { analyticsRouter } from './routers/analytics.ts';
import { cdcRouter } from './routers/cdc.ts';
import { etlRouter } from './routers/etl.ts';
import { meRouter } from './routers/me.ts';
import { notificationsRouter } from './routers/notifications.ts';
import { ordersRouter, sagaRouter } from './routers/orders.ts';
import { reportsRouter } from './routers/reports.ts';
import { reportsBuilderRouter } from './routers/reports-builder.ts';
import { workerIdentityRouter } from './routers/worker-identity.ts';
import { mergeRouters, router } from './trpc.ts';

export const edgeRouter = router({
  health: healthRouter,
  me: meRouter,
  reports: reportsRouter,
  notifications: notificationsRouter,
});

export const workerRouter = router({
  worker: mergeRouters(workerInfoRouter, workerIdentityRouter),
  reportsBuilder: reportsBuilderRouter,
  orders: ordersRouter,
  saga: sagaRouter,
  etl: etlRouter,
  analytics: analyticsRouter,
  cdc: cdcRouter,
});

export const appRouter = mergeRouters(edgeRouter, workerRouter);
export type AppRouter = typeof appRouter;
