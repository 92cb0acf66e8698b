/**
 * The edge's call to the workers' `reportsBuilder.build`, carrying the reader's own access token
 * (the workers check whose report it may be). Failures become {@link ReportsError}s whose messages
 * are safe to show: the worker's own message for the errors it means for users, a generic one else.
 */
import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import superjson from 'superjson';
import type { AppRouter } from '../../router/root.ts';
import type { ReportPeriod } from '../../shared/reports/period.ts';
import { ReportsError, type BuiltReport } from '../../shared/reports/ports.ts';

export interface BuildCall {
  owner: string;
  period: ReportPeriod;
  accessToken: string;
  requestId?: string;
  timeoutMs: number;
}

export type BuildReport = (call: BuildCall) => Promise<BuiltReport>;

interface CallContext extends Record<string, unknown> { accessToken: string; requestId?: string }

/** Creates the builder call against the worker pool at `workerUrl`. */
export function createBuilderClient(opts: { workerUrl: string; fetch?: typeof fetch }): BuildReport {
  const client = createTRPCClient<AppRouter>({
    links: [httpLink({
      url: new URL('/trpc', opts.workerUrl).href,
      transformer: superjson,
      fetch: opts.fetch,
      headers: ({ op }) => {
        const ctx = op.context as CallContext;
        return { authorization: `Bearer ${ctx.accessToken}`, ...(ctx.requestId ? { 'x-request-id': ctx.requestId } : {}) };
      },
    })],
  });

  return async function build(call) {
    const signal = AbortSignal.timeout(call.timeoutMs);
    try {
      return await client.reportsBuilder.build.mutate(
        { userId: call.owner, period: call.period.id },
        { context: { accessToken: call.accessToken, requestId: call.requestId } satisfies CallContext, signal },
      );
    } catch (err) {
      throw toReportsError(err, signal);
    }
  };
}

function toReportsError(err: unknown, signal: AbortSignal): ReportsError {
  if (signal.aborted) return new ReportsError('TIMEOUT', 'Building the report took too long; please retry shortly', { cause: err });
  const code = err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : undefined;
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'SERVICE_UNAVAILABLE': return new ReportsError('UNAVAILABLE', message, { cause: err });
    case 'FORBIDDEN': return new ReportsError('FORBIDDEN', message, { cause: err });
    case 'UNAUTHORIZED': return new ReportsError('UNAUTHORIZED', 'Please sign in again', { cause: err });
    case 'BAD_REQUEST': return new ReportsError('BAD_REQUEST', message, { cause: err });
    case undefined: return new ReportsError('UNAVAILABLE', 'The report builder is unreachable; please retry shortly', { cause: err });
    default: return new ReportsError('UNAVAILABLE', 'The report builder failed; please retry shortly', { cause: err });
  }
}
