import { tracked, TRPCError } from '@trpc/server';
import { z } from 'zod';
import { ConnectionLimitError, type NotificationFeed } from '../../shared/notifications/feed.ts';
import type { StreamEntry } from '../../shared/notifications/stream.ts';
import type { RouterContext } from '../context.ts';
import { authedProcedure, router } from '../trpc.ts';

function feedOf(ctx: RouterContext): NotificationFeed {
  if (!ctx.ports.notifications) throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'Notifications are not served here' });
  return ctx.ports.notifications;
}

/**
 * The signed-in user's notifications (served by the edge from KV; see shared/notifications).
 * `onNotification` is a subscription over SSE: each event's id is its position in the user's
 * stream, so a client that reconnects (httpSubscriptionLink does it by itself) resumes after the
 * last event it saw. A user may hold a few live connections at once; one more is refused with
 * TOO_MANY_REQUESTS. The stream is read from the user's region's KV (a user the edge cannot place
 * is FORBIDDEN, like any other residency refusal).
 */
export const notificationsRouter = router({
  onNotification: authedProcedure
    .input(z.object({ lastEventId: z.string().max(20).nullish() }).nullish())
    .subscription(async function* ({ ctx, input, signal }) {
      const feed = feedOf(ctx);
      let entries: AsyncGenerator<StreamEntry>;
      try {
        entries = await feed.open(ctx.identity, { lastEventId: input?.lastEventId, signal, log: ctx.log });
      } catch (err) {
        if (err instanceof ConnectionLimitError) throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message: err.message, cause: err });
        throw err;
      }
      for await (const entry of entries) yield tracked(String(entry.seq), entry);
    }),
  recent: authedProcedure
    .input(z.object({ limit: z.number().int().min(1).max(100).default(20) }).default({}))
    .query(({ ctx, input }) => feedOf(ctx).recent(ctx.identity, input.limit, ctx.log)),
});
