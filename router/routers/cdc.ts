/**
 * `cdc.*` (worker-served): the health of change data capture, CRM PostgreSQL → bus → ClickHouse.
 * Admins only: it shows replication positions and table states of the whole platform.
 */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import type { CdcStatus } from '../../shared/ports/cdc.ts';
import { roleProcedure, router } from '../trpc.ts';

const lsn = z.string().nullable();
const time = z.string().nullable();

const cdcStatusOutput = z.object({
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

/** Slot positions, lag (seconds and bytes), retained WAL, per-table state and the alert, right now. */
const status = roleProcedure('admin')
  .output(cdcStatusOutput)
  .query(async ({ ctx }) => {
    if (!ctx.ports.cdc) throw new TRPCError({ code: 'PRECONDITION_FAILED', message: 'CDC does not run on this worker' });
    return ctx.ports.cdc.status();
  });

export const cdcRouter = router({ status });
