/**
 * Regions as configuration (data residency). `REGIONS=ru,eu` lists the regions; each one's
 * personal-data stores are named by variables `REGION_<ID>_<SUFFIX>` (`REGION_RU_CRM_DATABASE_URL`,
 * …; the suffixes are {@link REGION_VARIABLES}). Adding a region is adding its id and its variables:
 * no code changes. With `REGIONS` unset there is one implicit region on today's global variables
 * (`CRM_DATABASE_URL`, `TELEMETRY_DATABASE_URL`, `S3_BUCKET_REPORTS`), so single-region deployments
 * keep working as they are.
 *
 * The per-region variables are dynamic, so they cannot be keys of the static zod schemas in
 * shared/config.ts: {@link regionsEnv} adds `REGIONS` there, and {@link regionsConfigOf} reads the
 * rest from the raw environment, naming every bad variable in one {@link ConfigError}.
 */
import { z } from 'zod';
import { ConfigError, url, type Env } from '../config-fields.ts';

/** Region ids: lower case, so `REGION_<ID>_…` (upper case) maps back to exactly one id. */
export const REGION_ID = /^[a-z][a-z0-9]{1,15}$/;
/** The id of the implicit region when `REGIONS` is unset. */
export const DEFAULT_REGION_ID = 'default';

export const regionsEnv = {
  /** Comma-separated region ids (`ru,eu`); unset: one implicit region on the global variables. */
  REGIONS: z.string()
    .transform((s) => s.split(',').map((r) => r.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(REGION_ID, 'region ids must be 2-16 characters [a-z0-9], starting with a letter'))
      .min(1, 'must list at least one region')
      .refine((ids) => new Set(ids).size === ids.length, 'region ids must be unique'))
    .optional(),
};

export type RegionHost = 'edge' | 'worker';

/** One region's stores. Only personal data lives here; shared, non-personal data stays central. */
export interface Region {
  id: string;
  /** The region's CRM database (customers, devices, orders): workers only, absent on the edge. */
  crmDatabaseUrl?: string;
  /** The region's telemetry database: workers only, absent on the edge. */
  telemetryDatabaseUrl?: string;
  /** The region's ClickHouse database (CRM replicas, per-user statistics): workers only. */
  clickhouseDatabase?: string;
  /** Where the region's reports are stored: its own bucket, optionally its own S3 endpoint and S3 region. */
  reports: { bucket: string; endpoint?: string; s3Region: string };
  /**
   * The region's own KV (Upstash REST): its people's sessions (edge) and notification streams (the
   * worker pushes, the edge reads); absent: the central KV.
   */
  kv?: { url: string; token: string };
}

export interface RegionsConfig {
  /** True when `REGIONS` is unset: a single implicit region that every identity belongs to. */
  implicit: boolean;
  /** In `REGIONS` order. */
  regions: Region[];
}

/** Today's global settings: the implicit region's stores and the per-region fallbacks. */
export interface RegionFallbacks {
  crmDatabaseUrl?: string;
  telemetryDatabaseUrl?: string;
  /** The worker's (central) ClickHouse database: the implicit region's, and the prefix of the regions'. */
  clickhouseDatabase?: string;
  reportsBucket: string;
  s3Endpoint?: string;
  s3Region: string;
}

const bucket = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name');

interface RegionVariable {
  /** What the README says about it. */
  meaning: string;
  /** Hosts that must have it (others ignore it). */
  requiredOn: RegionHost[];
  hosts: RegionHost[];
  schema: z.ZodType<string>;
  /** Value when unset (required variables have none). */
  fallback?: (id: string, f: RegionFallbacks) => string | undefined;
}

/**
 * Every per-region variable suffix. Phase 2 adds its per-region stores (ClickHouse database, …) here;
 * parsing, validation and the documentation check follow from this table.
 */
export const REGION_VARIABLES = {
  CRM_DATABASE_URL: { meaning: 'the region\'s CRM PostgreSQL database', requiredOn: ['worker'], hosts: ['worker'], schema: url },
  TELEMETRY_DATABASE_URL: { meaning: 'the region\'s telemetry PostgreSQL database', requiredOn: ['worker'], hosts: ['worker'], schema: url },
  CLICKHOUSE_DATABASE: {
    meaning: 'the region\'s ClickHouse database (CRM replicas and per-user statistics)', requiredOn: [], hosts: ['worker'],
    schema: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an identifier'),
    fallback: (id, f) => `${f.clickhouseDatabase ?? 'bionic'}_${id}`,
  },
  REPORTS_BUCKET: {
    meaning: 'the region\'s report bucket', requiredOn: [], hosts: ['edge', 'worker'], schema: bucket,
    fallback: (id, f) => `${f.reportsBucket}-${id}`.slice(0, 63),
  },
  S3_ENDPOINT: { meaning: 'S3 endpoint of that bucket', requiredOn: [], hosts: ['edge', 'worker'], schema: url, fallback: (_, f) => f.s3Endpoint },
  S3_REGION: { meaning: 'S3 region of that bucket', requiredOn: [], hosts: ['edge', 'worker'], schema: z.string().min(1), fallback: (_, f) => f.s3Region },
  UPSTASH_REDIS_REST_URL: {
    meaning: 'the region\'s KV (Upstash REST) for its people\'s sessions and notification streams', requiredOn: [], hosts: ['edge', 'worker'], schema: url,
  },
  UPSTASH_REDIS_REST_TOKEN: { meaning: 'the token of that KV', requiredOn: [], hosts: ['edge', 'worker'], schema: z.string().min(1) },
} satisfies Record<string, RegionVariable>;

export type RegionVariableSuffix = keyof typeof REGION_VARIABLES;

/** `REGION_<ID>_<SUFFIX>` for a region id. */
export const regionVariable = (id: string, suffix: RegionVariableSuffix) => `REGION_${id.toUpperCase()}_${suffix}`;

/**
 * Builds the region table for a host from the raw environment (after the main schema parsed
 * `REGIONS`). Throws {@link ConfigError} naming every missing or bad `REGION_<ID>_…` variable, and
 * every such variable of a region `REGIONS` does not list — a typo must not leave data unrouted.
 */
export function regionsConfigOf(env: Env, host: RegionHost, ids: string[] | undefined, f: RegionFallbacks): RegionsConfig {
  if (!ids) {
    return {
      implicit: true,
      regions: [{
        id: DEFAULT_REGION_ID,
        ...(host === 'worker'
          ? { crmDatabaseUrl: f.crmDatabaseUrl, telemetryDatabaseUrl: f.telemetryDatabaseUrl, clickhouseDatabase: f.clickhouseDatabase }
          : {}),
        reports: { bucket: f.reportsBucket, endpoint: f.s3Endpoint, s3Region: f.s3Region },
      }],
    };
  }
  const problems: { variable: string; message: string }[] = [];
  const read = (id: string, suffix: RegionVariableSuffix): string | undefined => {
    const spec: RegionVariable = REGION_VARIABLES[suffix];
    const name = regionVariable(id, suffix);
    const raw = env[name];
    if (raw === undefined || raw === '') {
      if (spec.requiredOn.includes(host)) problems.push({ variable: name, message: `is required but not set (region ${id} is listed in REGIONS)` });
      return spec.fallback?.(id, f);
    }
    const parsed = spec.schema.safeParse(raw);
    if (!parsed.success) problems.push({ variable: name, message: parsed.error.issues[0]?.message ?? 'is invalid' });
    return parsed.success ? parsed.data : undefined;
  };
  // A region's KV needs both its URL and its token; neither: sessions and notifications stay in the central KV.
  const kvOf = (id: string): Pick<Region, 'kv'> => {
    const [url, token] = [read(id, 'UPSTASH_REDIS_REST_URL'), read(id, 'UPSTASH_REDIS_REST_TOKEN')];
    if (url && token) return { kv: { url, token } };
    if (url || token) {
      const missing = regionVariable(id, url ? 'UPSTASH_REDIS_REST_TOKEN' : 'UPSTASH_REDIS_REST_URL');
      problems.push({ variable: missing, message: `is required with ${regionVariable(id, url ? 'UPSTASH_REDIS_REST_URL' : 'UPSTASH_REDIS_REST_TOKEN')}` });
    }
    return {};
  };
  const regions = ids.map((id): Region => {
    const reports = { bucket: read(id, 'REPORTS_BUCKET')!, endpoint: read(id, 'S3_ENDPOINT'), s3Region: read(id, 'S3_REGION')! };
    return host === 'worker'
      ? {
          id, crmDatabaseUrl: read(id, 'CRM_DATABASE_URL'), telemetryDatabaseUrl: read(id, 'TELEMETRY_DATABASE_URL'),
          clickhouseDatabase: read(id, 'CLICKHOUSE_DATABASE'), reports, ...kvOf(id),
        }
      : { id, reports, ...kvOf(id) };
  });
  // A regional ClickHouse database shared with the central one or another region would mix personal data.
  const databases = new Map<string, string>(f.clickhouseDatabase ? [[f.clickhouseDatabase, 'the central CLICKHOUSE_DATABASE']] : []);
  for (const r of regions) {
    if (!r.clickhouseDatabase) continue;
    const taken = databases.get(r.clickhouseDatabase);
    if (taken) problems.push({ variable: regionVariable(r.id, 'CLICKHOUSE_DATABASE'), message: `must differ from ${taken} (${r.clickhouseDatabase})` });
    databases.set(r.clickhouseDatabase, regionVariable(r.id, 'CLICKHOUSE_DATABASE'));
  }
  const known = new Set(ids.map((id) => id.toUpperCase()));
  const suffixes = Object.keys(REGION_VARIABLES).join('|');
  for (const name of Object.keys(env)) {
    const m = /^REGION_([A-Z0-9]+)_(.+)$/.exec(name);
    if (!m || env[name] === undefined || env[name] === '') continue;
    if (!known.has(m[1]!)) problems.push({ variable: name, message: `region ${m[1]!.toLowerCase()} is not listed in REGIONS (${ids.join(',')})` });
    else if (!new RegExp(`^(${suffixes})$`).test(m[2]!)) problems.push({ variable: name, message: `is not a per-region variable (known: ${suffixes.replace(/\|/g, ', ')})` });
  }
  if (problems.length) throw new ConfigError(problems);
  return { implicit: false, regions };
}

/** The region with this id, if configured. */
export function findRegion(config: RegionsConfig, id: string): Region | undefined {
  return config.regions.find((r) => r.id === id);
}
