/**
 * `bionic saga ls|show`: order sagas and their history, read from the platform database. `show`
 * uses the same query as the `saga.get` procedure (workers/saga/orders-service.ts); `ls` is the one
 * listing query the platform had no function for.
 */
import pc from 'picocolors';
import type postgres from 'postgres';
import { SAGA_STATES, type SagaState, type SagaView } from '../../shared/saga/api.ts';
import { createOrdersService } from '../saga/orders-service.ts';
import { CliError, EXIT } from './errors.ts';
import type { Output } from './output.ts';

/** One row of `saga ls`. */
export interface SagaSummary {
  id: string; state: SagaState; version: number; awaiting: string | null;
  deadlineAt: Date | null; overdue: boolean; createdAt: Date; updatedAt: Date; finishedAt: Date | null;
}

export interface ListSagasOptions { state?: SagaState; stuck?: boolean; limit: number }

/** Checks a `--state` value. */
export function parseState(value: string | undefined): SagaState | undefined {
  if (value === undefined) return undefined;
  const upper = value.toUpperCase();
  if (!(SAGA_STATES as readonly string[]).includes(upper)) throw new CliError(`--state must be one of ${SAGA_STATES.join(', ')}, got "${value}"`, EXIT.USAGE);
  return upper as SagaState;
}

/** The newest sagas first; `stuck`: only those past their state's deadline (the sweeper should have timed them out). */
export async function listSagas(platform: postgres.Sql, o: ListSagasOptions): Promise<{ sagas: SagaSummary[]; counts: Record<string, number> }> {
  const [rows, counts] = await Promise.all([
    platform<SagaSummary[]>`
      SELECT id, state, version, awaiting, deadline_at AS "deadlineAt", created_at AS "createdAt", updated_at AS "updatedAt",
             finished_at AS "finishedAt", coalesce(deadline_at < clock_timestamp(), false) AS overdue
      FROM saga_instances
      WHERE (${o.state ?? null}::text IS NULL OR state = ${o.state ?? null}) AND (NOT ${o.stuck ?? false} OR deadline_at < clock_timestamp())
      ORDER BY created_at DESC, id DESC LIMIT ${o.limit}`,
    platform<{ state: string; n: number }[]>`SELECT state, count(*)::int AS n FROM saga_instances GROUP BY state`,
  ]);
  return { sagas: rows, counts: Object.fromEntries(counts.map((c) => [c.state, c.n])) };
}

/** A saga with its full history; `id` is a saga id (`order-42`) or an order id (`42`). */
export async function showSaga(platform: postgres.Sql, id: string): Promise<SagaView | null> {
  // saga() reads only the platform database: the CRM and the bus are not touched.
  const service = createOrdersService({ platform, crm: undefined as never, bus: undefined as never });
  return service.saga(id.replace(/^order-/, ''));
}

const STATE_COLOUR: Record<SagaState, (s: string) => string> = {
  DRAFT: pc.yellow, APPROVED: pc.cyan, REJECTED: pc.red, NOTIFICATION: pc.blue, FINISHED: pc.green,
};
const time = (d: Date | null) => (d ? d.toISOString().replace('T', ' ').replace('Z', '') : '—');

/** Lays out rows in columns; `style` colours a cell after padding so escape codes do not skew widths. */
export function table(rows: string[][], style: (cell: string, row: number, col: number) => string = (c) => c): string[] {
  const widths = rows.reduce<number[]>((w, r) => r.map((c, i) => Math.max(w[i] ?? 0, c.length)), []);
  return rows.map((r, ri) => r.map((c, ci) => style(ci === r.length - 1 ? c : c.padEnd(widths[ci]!), ri, ci)).join('  ').trimEnd());
}

export function printSagaList(out: Output, r: { sagas: SagaSummary[]; counts: Record<string, number> }): void {
  out.json(r);
  const total = Object.values(r.counts).reduce((a, b) => a + b, 0);
  if (r.sagas.length === 0) out.line(total ? 'No saga matches.' : 'No sagas yet.');
  else {
    const rows = [['SAGA', 'STATE', 'VERSION', 'AWAITING', 'CREATED', 'UPDATED', 'DEADLINE']];
    for (const s of r.sagas) {
      rows.push([s.id, s.state, String(s.version), s.awaiting ?? '—', time(s.createdAt), time(s.updatedAt), s.overdue ? `${time(s.deadlineAt)} overdue` : time(s.deadlineAt)]);
    }
    for (const l of table(rows, (c, ri, ci) => (ri === 0 ? pc.bold(c) : ci === 1 ? STATE_COLOUR[r.sagas[ri - 1]!.state](c) : ci === 6 && r.sagas[ri - 1]!.overdue ? pc.red(c) : c))) out.line(l);
  }
  out.line(pc.dim(`${total} saga${total === 1 ? '' : 's'} in all: ${SAGA_STATES.filter((s) => r.counts[s]).map((s) => `${s} ${r.counts[s]}`).join(', ') || 'none'}`));
}

export function printSaga(out: Output, s: SagaView): void {
  out.json(s);
  out.line(`${pc.bold(`saga ${s.id}`)}  ${STATE_COLOUR[s.state](s.state)}  version ${s.version}  ${pc.dim(s.kind)}`);
  for (const [k, v] of [['created', time(s.createdAt)], ['updated', time(s.updatedAt)], ['finished', time(s.finishedAt)],
    ['awaiting', s.awaiting ?? '—'], ['deadline', time(s.deadlineAt)], ['context', JSON.stringify(s.context)]] as const) {
    out.line(`  ${k.padEnd(9)} ${v}`);
  }
  out.line(pc.bold(`history (${s.history.length} entr${s.history.length === 1 ? 'y' : 'ies'}):`));
  const rows = s.history.map((h) => [
    time(h.at), h.eventType, `${h.fromState ?? '—'} → ${h.toState ?? '—'}`, h.outcome,
    [h.commands.length ? `sent ${h.commands.map((c) => `${c.type} → ${c.topic}`).join(', ')}` : '', h.reason ?? ''].filter(Boolean).join('; '),
  ]);
  for (const l of table(rows, (c, ri, ci) => (ci === 3 && s.history[ri]!.outcome === 'ignored' ? pc.yellow(c) : c))) out.line(`  ${l}`);
}

export function notFound(id: string): CliError {
  return new CliError(`no saga ${id} (saga ids look like order-42; an order id works too)`, EXIT.NOT_FOUND);
}
