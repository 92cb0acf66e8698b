import { TRPCError } from '@trpc/server';
import {
  createOrderInput, listOrdersInput, OrderError, orderIdInput, sagaOfOrderInput, updateOrderInput,
  type OrderActor, type OrdersPort,
} from '../../shared/saga/api.ts';
import type { Identity, RouterContext } from '../context.ts';
import { authedProcedure, roleProcedure, router } from '../trpc.ts';
import { regionOf } from '../../shared/regions/residency.ts';

/**
 * Operators and admins see every order of their region; anyone else only the orders of their own
 * customer account. The region is the caller's verified one (data residency: refused and logged
 * when it has none or an unknown one), never something the input names.
 */
const actorOf = (ctx: RouterContext, identity: Identity): OrderActor => ({
  username: identity.username,
  userId: identity.userId,
  ownOnly: !identity.roles.some((r) => r === 'crm_operator' || r === 'admin'),
  ...(ctx.ports.regions ? { region: regionOf(identity, ctx.ports.regions.config, ctx.log) } : {}),
});

function portOf(ctx: RouterContext): OrdersPort {
  if (!ctx.ports.orders) throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'Orders are not served here' });
  return ctx.ports.orders;
}

/** Runs `fn`, turning the port's refusals into tRPC errors. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof OrderError) throw new TRPCError({ code: err.code, message: err.message, cause: err });
    throw err;
  }
}

const notFound = (id: string) => new TRPCError({ code: 'NOT_FOUND', message: `No order ${id}` });

/**
 * Prosthesis orders (served by the workers). `create` registers an order and starts its saga; a
 * repeated idempotency key returns the order it created (`created: false`). `update` needs the
 * version the caller read and answers CONFLICT when someone changed the order since.
 */
export const ordersRouter = router({
  create: roleProcedure('crm_operator').input(createOrderInput).mutation(({ ctx, input }) =>
    call(() => portOf(ctx).create(input, actorOf(ctx, ctx.identity!)))),
  get: authedProcedure.input(orderIdInput).query(async ({ ctx, input }) => {
    const order = await call(() => portOf(ctx).get(input.id, actorOf(ctx, ctx.identity)));
    if (!order) throw notFound(input.id);
    return order;
  }),
  list: authedProcedure.input(listOrdersInput).query(({ ctx, input }) => call(() => portOf(ctx).list(input, actorOf(ctx, ctx.identity)))),
  update: roleProcedure('crm_operator').input(updateOrderInput).mutation(({ ctx, input }) =>
    call(() => portOf(ctx).update(input, actorOf(ctx, ctx.identity!)))),
});

/** The order saga's state and full history (operators and admins). */
export const sagaRouter = router({
  get: roleProcedure('crm_operator', 'admin').input(sagaOfOrderInput).query(async ({ ctx, input }) => {
    const saga = await call(() => portOf(ctx).saga(input.orderId, actorOf(ctx, ctx.identity!)));
    if (!saga) throw new TRPCError({ code: 'NOT_FOUND', message: `No saga for order ${input.orderId}` });
    return saga;
  }),
});
