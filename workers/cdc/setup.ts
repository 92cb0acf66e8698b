/**
 * Start-up: brings the publication, the slot, the replica tables and their state in line with the
 * configured tables. Order matters: the publication must exist before the slot (decoding looks it up
 * as of each transaction), and a table joins the publication before its initial snapshot is signalled.
 *
 * Tables that need loading are marked `pending`: their changes are not published until the capture,
 * holding the slot, signals their snapshot point through the WAL (capture.ts). A new slot (first
 * start, or after `drop-slot`) or a table newly added to the publication means changes were missed,
 * so those tables are loaded again; the replica is reloaded in place, rows gone since are tombstoned.
 */
import type { Logger } from '../../shared/log.ts';
import type { CdcOptions } from '../../shared/cdc/config.ts';
import { formatLsn } from './lsn.ts';
import type { Replica, TableState } from './replica.ts';
import { CdcError, type TableRuntime } from './runtime.ts';
import type { CrmSource } from './source.ts';

export interface SetupDeps { source: CrmSource; replica: Replica; log: Logger; options: CdcOptions }

export function setUp(deps: SetupDeps): Promise<Map<string, TableRuntime>> {
  return deps.source.exclusively(() => reconcile(deps));
}

async function reconcile({ source, replica, log, options }: SetupDeps): Promise<Map<string, TableRuntime>> {
  const { tables, problems } = await source.tables(options.tables);
  for (const p of problems) log.error('cdc: table cannot be captured', p);
  if (tables.length === 0) throw new CdcError(`no table to capture${options.tables ? ` among ${options.tables.join(', ')}` : ' in schema public'}`);
  const names = tables.map((t) => t.name);
  await replica.init();
  const states = await replica.states();

  let slot = await source.slot();
  const published = await source.publicationTables();
  const joined = new Set<string>();
  if (published === null) {
    if (slot) {
      log.warn('cdc: the publication is gone; recreating it and the slot, every table will be loaded again', { slot: slot.name });
      await source.dropSlot({ force: true });
      slot = null;
    }
    await source.createPublication(names);
    log.notice('cdc: publication created', { publication: options.publication, tables: names });
  } else {
    const add = names.filter((n) => !published.includes(n));
    const drop = published.filter((n) => !names.includes(n));
    if (add.length || drop.length) {
      await source.alterPublication(add, drop);
      log.notice('cdc: publication changed', { publication: options.publication, added: add, removed: drop });
      for (const n of add) joined.add(n);
    }
  }
  const newSlot = !slot;
  if (newSlot) {
    const at = await source.createSlot();
    log.notice('cdc: replication slot created', { slot: options.slot, consistentPoint: formatLsn(at) });
  }

  const runtimes = new Map<string, TableRuntime>();
  for (const t of tables) {
    let st: TableState | undefined = states.get(t.name);
    if (!st) {
      const how = await replica.ensureTable(t.name, t.columns, t.primaryKey);
      log.info('cdc: replica table ready', { table: t.name, how });
      st = { table: t.name, status: 'pending', floor: 0n, columns: t.columns, primaryKey: t.primaryKey, reason: null, snapshotRows: null };
      await replica.save(st);
    } else if ((newSlot || joined.has(t.name)) && st.status !== 'pending' && st.status !== 'quarantined') {
      st = { ...st, status: 'pending' };
      await replica.save(st);
    }
    runtimes.set(t.name, { state: st, relationOid: t.oid, changes: 0, skipped: 0, reportedDrops: new Set(), truncatedAt: null });
  }
  return runtimes;
}
