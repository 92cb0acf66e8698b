/**
 * Which prosthesis model each chip is, from the CRM: the ClickHouse replicas CDC maintains
 * (`crm_prostheses`, `crm_prosthesis_models`, read with FINAL) when they exist, and the CRM
 * database itself for chips they do not know (yet). Reports keep working before CDC has run, while
 * its replicas are rebuilt, and for a device registered a moment ago.
 */
import type { Logger } from '../../shared/log.ts';
import type { Olap } from '../../shared/ports/olap.ts';
import type { OltpQueryable } from '../../shared/ports/oltp.ts';
import type { ReportDevice } from '../../shared/reports/schema.ts';

export type ProsthesisModel = NonNullable<ReportDevice['model']>;
export type ModelLookup = (chipIds: readonly string[]) => Promise<Map<string, ProsthesisModel>>;

interface ModelRow { chip_id: string; name: string | null; kind: string | null; manufacturer: string | null }

// Replica column types are CDC's choice: join on text so Int32 and Int64 ids still meet.
const FROM_REPLICAS = `SELECT p.chip_id AS chip_id, m.name AS name, m.kind AS kind, m.manufacturer AS manufacturer
FROM (SELECT chip_id, toString(model_id) AS model_id FROM crm_prostheses FINAL WHERE _deleted = 0 AND chip_id IN {chips:Array(String)}) AS p
INNER JOIN (SELECT toString(id) AS id, name, kind, manufacturer FROM crm_prosthesis_models FINAL WHERE _deleted = 0) AS m ON m.id = p.model_id`;

const FROM_CRM = `SELECT p.chip_id, m.name, m.kind, m.manufacturer
FROM prostheses p JOIN prosthesis_models m ON m.id = p.model_id WHERE p.chip_id = ANY($1::text[])`;

/** How long the "do the replicas exist" answer is trusted. */
const REPLICA_CHECK_MS = 60_000;

export function createModelLookup(deps: { olap: Olap; crm?: OltpQueryable; log: Logger; now?: () => number }): ModelLookup {
  const now = deps.now ?? Date.now;
  let replicas: { exist: boolean; at: number } | null = null;

  async function haveReplicas(): Promise<boolean> {
    if (replicas && now() - replicas.at < REPLICA_CHECK_MS) return replicas.exist;
    const [row] = await deps.olap.query<{ n: string }>(
      `SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name IN ('crm_prostheses', 'crm_prosthesis_models')`,
    );
    replicas = { exist: Number(row?.n) === 2, at: now() };
    return replicas.exist;
  }

  const toMap = (rows: ModelRow[]) => new Map(rows.filter((r) => r.name).map((r) => [r.chip_id, { name: r.name!, kind: r.kind ?? '', manufacturer: r.manufacturer ?? '' }]));

  return async function lookup(chipIds) {
    if (chipIds.length === 0) return new Map();
    let found = new Map<string, ProsthesisModel>();
    if (await haveReplicas()) {
      try {
        found = toMap(await deps.olap.query<ModelRow>(FROM_REPLICAS, { chips: chipIds }));
      } catch (err) {
        // A replica mid-migration must not cost the user their report: the CRM still knows.
        deps.log.warn('reading models from the ClickHouse replicas failed; asking the CRM', { err });
        if (!deps.crm) throw err;
      }
    }
    // Chips the replicas do not know yet (CDC lag, a snapshot still running) come from the CRM.
    const missing = chipIds.filter((c) => !found.has(c));
    if (missing.length === 0 || !deps.crm) return found;
    for (const [chip, model] of toMap(await deps.crm.query<ModelRow>(FROM_CRM, [missing]))) found.set(chip, model);
    return found;
  };
}
