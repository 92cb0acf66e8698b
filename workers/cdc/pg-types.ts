/**
 * PostgreSQL column types → ClickHouse replica types, and the one canonical form of each value.
 *
 * Values travel as PostgreSQL's own text output (the stream decodes pgoutput's text tuples on a
 * connection pinned to `TimeZone=UTC`, `DateStyle=ISO`; the snapshot reads text through ClickHouse's
 * PostgreSQL engine), so no value passes through a lossy JavaScript type:
 *
 * | PostgreSQL | envelope value | ClickHouse |
 * |---|---|---|
 * | boolean | `true` / `false` | Bool |
 * | smallint, integer, oid | number | Int16, Int32, UInt32 |
 * | bigint | decimal string | Int64 |
 * | real, double precision | number (`"NaN"`, `"Infinity"` as strings) | Float32, Float64 |
 * | numeric(p, s) | decimal string | Decimal(p, s); unconstrained numeric: String |
 * | date | `YYYY-MM-DD` | Date32 |
 * | timestamp | `YYYY-MM-DDTHH:MM:SS[.ffffff]` | DateTime64(6, 'UTC') (wall clock taken as UTC) |
 * | timestamptz | `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (UTC) | DateTime64(6, 'UTC') |
 * | uuid | string | UUID |
 * | json, jsonb | the JSON text, as a string (like Debezium's `io.debezium.data.Json`) | String |
 * | anything else (text, arrays, enums, intervals, bytea…) | PostgreSQL's text | String |
 *
 * ClickHouse's DateTime64 and Date32 cover 1900–2299: `±infinity` become those bounds on both paths;
 * a `numeric(p, s)` NaN becomes NULL.
 */

/** A replica column. `chType` is ClickHouse's spelling without `Nullable`, as `system.columns` prints it. */
export interface ColumnSpec {
  name: string;
  typeOid: number;
  typeMod: number;
  chType: string;
  nullable: boolean;
  /** Decimal commit LSN of the transaction in which the stream first showed the column (absent: always there). */
  addedAt?: string;
}

const OID = {
  bool: 16, int8: 20, int2: 21, int4: 23, oid: 26, json: 114, float4: 700, float8: 701,
  date: 1082, timestamp: 1114, timestamptz: 1184, numeric: 1700, uuid: 2950, jsonb: 3802,
} as const;

const TS_MAX = '2299-12-31 23:59:59.999999';
const TS_MIN = '1900-01-01 00:00:00';

/** ClickHouse type (without Nullable) for a PostgreSQL type oid and typmod. */
export function chTypeOf(typeOid: number, typeMod: number): string {
  switch (typeOid) {
    case OID.bool: return 'Bool';
    case OID.int2: return 'Int16';
    case OID.int4: return 'Int32';
    case OID.int8: return 'Int64';
    case OID.oid: return 'UInt32';
    case OID.float4: return 'Float32';
    case OID.float8: return 'Float64';
    case OID.date: return 'Date32';
    case OID.timestamp:
    case OID.timestamptz: return "DateTime64(6, 'UTC')";
    case OID.uuid: return 'UUID';
    case OID.numeric: {
      if (typeMod < 4) return 'String'; // unconstrained: any precision, keep it exact as text
      const precision = ((typeMod - 4) >> 16) & 0xffff;
      const scale = (typeMod - 4) & 0xffff;
      return precision >= 1 && precision <= 76 && scale <= precision ? `Decimal(${precision}, ${scale})` : 'String';
    }
    default: return 'String';
  }
}

export const chColumnType = (c: Pick<ColumnSpec, 'chType' | 'nullable'>) => (c.nullable ? `Nullable(${c.chType})` : c.chType);

/** Decodes one text value of a pgoutput tuple into its envelope form (see the table above). */
export function decoderFor(typeOid: number, typeMod = -1): (text: string) => unknown {
  switch (typeOid) {
    // Decimal has no NaN: it becomes NULL (on both paths) rather than a value ClickHouse refuses.
    case OID.numeric: return chTypeOf(typeOid, typeMod) === 'String' ? (t) => t : (t) => (t === 'NaN' ? null : t);
    case OID.bool: return (t) => t === 't';
    case OID.int2:
    case OID.int4:
    case OID.oid: return Number;
    case OID.float4:
    case OID.float8: return (t) => { const n = Number(t); return Number.isFinite(n) ? n : t; };
    case OID.timestamptz: return (t) => timestampText(t, true);
    case OID.timestamp: return (t) => timestampText(t, false);
    case OID.date: return (t) => (t === 'infinity' ? TS_MAX.slice(0, 10) : t === '-infinity' ? TS_MIN.slice(0, 10) : t);
    default: return (t) => t;
  }
}

/** `2024-05-01 10:20:30.5+00` → `2024-05-01T10:20:30.5Z` (the stream's session runs in UTC). */
function timestampText(t: string, zoned: boolean): string {
  if (t === 'infinity' || t === '-infinity') return (t === 'infinity' ? TS_MAX : TS_MIN).replace(' ', 'T') + (zoned ? 'Z' : '');
  const iso = t.replace(' ', 'T');
  if (!zoned) return iso;
  if (iso.endsWith('+00')) return `${iso.slice(0, -3)}Z`;
  return shiftToUtc(t) ?? iso;
}

/** Exact conversion of another offset (`+05:30`), should a session not run in UTC after all. */
function shiftToUtc(t: string): string | null {
  const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?$/.exec(t);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac = '', sign, oh, om = '0', os = '0'] = m;
  const offset = (sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60 + Number(os));
  const at = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) - offset * 1000);
  return `${at.toISOString().slice(0, 19)}${frac}Z`;
}

/**
 * A ClickHouse expression turning PostgreSQL text (`expr`, a String expression) into the column's
 * value: the snapshot's per-column conversion and the DEFAULT of an added column.
 */
export function chFromText(expr: string, c: Pick<ColumnSpec, 'chType' | 'nullable'>): string {
  if (c.chType === 'Bool') return `(${expr} = 't')`;
  if (c.chType.startsWith('DateTime64')) {
    // best effort honours the offset the snapshot connection's TimeZone printed (+09, +05:30…).
    return `multiIf(${expr} = 'infinity', toDateTime64('${TS_MAX}', 6, 'UTC'), ${expr} = '-infinity', toDateTime64('${TS_MIN}', 6, 'UTC'), parseDateTime64BestEffort(${expr}, 6, 'UTC'))`;
  }
  if (c.chType === 'Date32') {
    return `multiIf(${expr} = 'infinity', toDate32('${TS_MAX.slice(0, 10)}'), ${expr} = '-infinity', toDate32('${TS_MIN.slice(0, 10)}'), toDate32(${expr}))`;
  }
  if (c.chType.startsWith('Decimal')) return `CAST(nullIf(${expr}, 'NaN') AS Nullable(${c.chType}))`;
  return `CAST(${expr} AS ${chColumnType(c)})`;
}

/** `name` quoted for ClickHouse. */
export const chIdent = (name: string) => `\`${name.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
/** A ClickHouse string literal. */
export const chString = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
/** `name` quoted for PostgreSQL. */
export const pgIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
