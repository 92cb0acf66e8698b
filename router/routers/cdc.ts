/**
 * `cdc.*` (worker-served): the health of change data capture, CRM PostgreSQL → bus → ClickHouse.
 * Admins only: it shows replication positions and table states of the whole platform. With regions,
 * CDC runs per region: `{ region }` asks for one; without it, one region answers its status and
 * several answer `{ regions: [...] }`, one status each (like `etl.status`).
 */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { CdcRegionError } from '../../shared/cdc/regions.ts';
import type { CdcStatus } from '../../shared/ports/cdc.ts';
import { roleProcedure, router } from '../trpc.ts';

const lsn = z.string().nullable();
const time = z.string().nullable();

const cdcStatusOutput = z.object({
  region: z.string(),
  state: z.enum(['starting', 'streaming', 'standby', 'reconnecting', 'stopped']),
  slot: z.object({
    name: z.string(), exists: z.boolean(), active: z.boolean(), activePid: z.number().nullable(),
    confirmedFlushLsn: lsn, restartLsn: lsn, walStatus: z.string().nullable(), currentLsn: z.string(),
  }),
  lagSeconds: z.number(),
  lagBytes: z.number(),
  retainedWalBytes: z.number(),
  alert: z.object({ lagging: z.boolean(), thresholdSeconds: z.number(), thresholdBytes: z.number().nullable(), reasons: z.array(z.string()) }),
  capture: z.object({
    receivedLsn: lsn, publishedLsn: lsn, acknowledgedLsn: lsn, transactions: z.number(), changes: z.number(), lastHeartbeatAt: time,
  }),
  sink: z.object({ rows: z.number(), pendingMessages: z.number().nullable(), lastWriteAt: time }),
  tables: z.array(z.object({
    table: z.string(), status: z.enum(['pending', 'snapshotting', 'streaming', 'quarantined']), reason: z.string().nullable(),
    snapshotRows: z.number().nullable(), changes: z.number(), skipped: z.number(),
  })),
  lastError: z.string().nullable(),
  checkedAt: z.string(),
}) satisfies z.ZodType<CdcStatus>;

/**
 * A region's slot positions, lag (seconds and bytes), retained WAL, per-table state and the alert,
 * right now; every region's (`{ regions }`) when CDC runs for several and none is named. A region
 * CDC does not run for is BAD_REQUEST, naming the ones it does.
 */
const status = roleProcedure('admin')
  .input(z.object({ region: z.string().min(1).max(64).optional() }).optional())
  .output(z.union([cdcStatusOutput, z.object({ regions: z.array(cdcStatusOutput) })]))
  .query(async ({ ctx, input }) => {
    const cdc = ctx.ports.cdc;
    if (!cdc) throw new TRPCError({ code: 'PRECONDITION_FAILED', message: 'CDC does not run on this worker' });
    if (!input?.region && cdc.regions.length > 1) return { regions: await Promise.all(cdc.regions.map((r) => cdc.status(r))) };
    try {
      return await cdc.status(input?.region);
    } catch (err) {
      if (!(err instanceof CdcRegionError)) throw err;
      throw new TRPCError({ code: 'BAD_REQUEST', message: err.message, cause: err });
    }
  });

export const cdcRouter = router({ status });
