import { TRPCError } from '@trpc/server';
import { ReportsError, type ReportsErrorCode } from '../../shared/reports/ports.ts';

type TrpcCode = ConstructorParameters<typeof TRPCError>[0]['code'];

const CODES: Record<ReportsErrorCode, TrpcCode> = {
  BAD_REQUEST: 'BAD_REQUEST', UNAUTHORIZED: 'UNAUTHORIZED', FORBIDDEN: 'FORBIDDEN', NOT_FOUND: 'NOT_FOUND',
  UNAVAILABLE: 'SERVICE_UNAVAILABLE', TIMEOUT: 'GATEWAY_TIMEOUT',
};

/** Runs a reports call, turning {@link ReportsError}s into the matching tRPC errors (others stay internal). */
export async function reportsCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ReportsError) throw new TRPCError({ code: CODES[err.code], message: err.message, cause: err });
    throw err;
  }
}
