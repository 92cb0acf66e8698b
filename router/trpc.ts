/**
 * INITIALIZATION and PROCEDURES. One tRPC instance for every router; superjson on the wire;
 * zod issues are exposed in error shapes so clients can show field-level messages.
 */
import { initTRPC, TRPCError } from '@trpc/server';
import superjson from 'superjson';
import { ZodError } from 'zod';
import type { RouterContext, Role } from './context.ts';

const t = initTRPC.context<RouterContext>().create({
  transformer: superjson,
  errorFormatter({ shape, error }) {
    const zod = error.cause instanceof ZodError ? error.cause.flatten() : null;
    // Never leak internals of unexpected failures: the message is replaced, the cause logged by the host.
    const message = error.code === 'INTERNAL_SERVER_ERROR' ? 'Internal server error' : shape.message;
    const { stack: _stack, ...data } = shape.data;
    return { ...shape, message, data: { ...data, zodError: zod } };
  },
});

export const router = t.router;
export const mergeRouters = t.mergeRouters;
export const createCallerFactory = t.createCallerFactory;

/** Every procedure's duration and result code, into the host's metrics (outermost, so refusals count too). */
const measured = t.procedure.use(async ({ ctx, path, type, next }) => {
  const started = performance.now();
  const result = await next();
  ctx.metrics?.procedure({ path, type, code: result.ok ? 'OK' : result.error.code, seconds: (performance.now() - started) / 1000 });
  return result;
});

/** Open to anyone; still gets a request id and logging from the host. */
export const publicProcedure = measured;

/** Requires a verified identity. Without one every call is UNAUTHORIZED: it never lets a call through. */
export const authedProcedure = measured.use(({ ctx, next }) => {
  if (!ctx.identity) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Sign in first' });
  return next({ ctx: { ...ctx, identity: ctx.identity } });
});

/** Requires one of the given roles on top of a verified identity. */
export const roleProcedure = (...roles: Role[]) =>
  authedProcedure.use(({ ctx, next }) => {
    if (!ctx.identity.roles.some((r) => roles.includes(r))) {
      throw new TRPCError({ code: 'FORBIDDEN', message: `Requires role: ${roles.join(' or ')}` });
    }
    return next();
  });
