import { z } from 'zod';
import { publicProcedure, router } from '../trpc.ts';

const healthOutput = z.object({
  status: z.enum(['ok', 'unavailable']),
  host: z.enum(['edge', 'worker']),
  dependencies: z.record(z.object({ ok: z.boolean(), latencyMs: z.number(), error: z.string().optional() })),
});

/** Readiness of the host that serves the call, with each dependency's status and latency. */
const check = publicProcedure.output(healthOutput).query(async ({ ctx }) => ({ ...(await ctx.health()), host: ctx.host }));

/** Liveness only: answers without touching any dependency (load balancers, benchmarks). */
const ping = publicProcedure.query(({ ctx }) => ({ ok: true as const, host: ctx.host }));

/** Edge-served health. */
export const healthRouter = router({ check, ping });
/** Worker-served health (reached through the edge's forwarding). */
export const workerRouter = router({ health: check });
