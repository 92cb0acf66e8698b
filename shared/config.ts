/**
 * Configuration: one zod schema per entry point, composed from shared parts, keyed by the
 * environment variable names themselves so every error names the variable at fault.
 * Parsed once at the composition root; nothing below the root reads the environment.
 */
import { z } from 'zod';
import { analyticsConfigOf, analyticsEnv, analyticsKeyProblem, type AnalyticsConfig } from './analytics/config.ts';
import { busConfigOf, busEnv, type BusConfig } from './bus/config.ts';
import { cdcConfigOf, cdcEnv, type CdcConfig } from './cdc/config.ts';
import { cdcRegionProblems } from './cdc/regions.ts';
import { bool, ConfigError, port, secret, url, type Env } from './config-fields.ts';
import { sagaConfigOf, sagaEnv, type SagaConfig } from './saga/config.ts';
import { telemetryConfigOf, telemetryEnv, type TelemetryConfig } from './telemetry/config.ts';
import { etlConfigOf, etlEnv, type EtlConfig } from './etl/config.ts';
import { metricsTokenProblem, opsConfigOf, opsEnv, type OpsConfig } from './metrics/config.ts';
import { regionsConfigOf, regionsEnv, type RegionsConfig } from './regions/config.ts';
import { reportsEdgeConfigOf, reportsEdgeEnv, reportsWorkerConfigOf, reportsWorkerEnv, type ReportsEdgeConfig, type ReportsWorkerConfig } from './reports/config.ts';

export { ConfigError, type Env };

const common = {
  BIONIC_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  ...opsEnv,
};

const kv = {
  UPSTASH_REDIS_REST_URL: url,
  UPSTASH_REDIS_REST_TOKEN: secret(16),
};

const objectStore = {
  S3_ENDPOINT: url.optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().min(1),
  S3_SECRET_ACCESS_KEY: z.string().min(1),
  S3_BUCKET_REPORTS: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name').default('reports'),
  S3_FORCE_PATH_STYLE: bool.default('false'),
};

/** `kid:base64key,kid:base64key`; the first key seals. Each key is 32 random bytes (AES-256). */
const sessionKeys = z.string().transform((spec, ctx) => {
  const entries = spec.split(',').map((p) => p.trim()).filter(Boolean).map((p) => ({ kid: p.slice(0, Math.max(0, p.indexOf(':'))), secret: p.slice(p.indexOf(':') + 1) }));
  const problem = entries.length === 0 ? 'must list at least one kid:base64key'
    : entries.map((e) => keyProblem(e.kid, e.secret)).find(Boolean) ?? (new Set(entries.map((e) => e.kid)).size !== entries.length ? 'key ids must be unique' : undefined);
  if (problem) { ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem }); return z.NEVER; }
  return entries;
});

function keyProblem(kid: string, secret: string): string | undefined {
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(kid)) return `each entry must be kid:base64key with a kid of 1-32 characters [A-Za-z0-9_-] (got "${kid}")`;
  let bytes: number;
  try { bytes = atob(secret.replace(/-/g, '+').replace(/_/g, '/')).length; } catch { return `key "${kid}" is not base64`; }
  return bytes === 32 ? undefined : `key "${kid}" must be 32 bytes (256 bits), got ${bytes}`;
}

const seconds = (dflt: number) => z.coerce.number().int().min(1).max(365 * 24 * 3600).default(dflt);
const perMinute = (dflt: number) => z.coerce.number().int().min(1).max(1_000_000).default(dflt);

/** The identity provider (a Keycloak realm, or the dev IdP with Keycloak's layout). */
const oidcShared = {
  OIDC_ISSUER: url.optional(),
  OIDC_AUDIENCE: z.string().min(1).default('bionic-worker-api'),
  OIDC_JWKS_URL: url.optional(),
};

const edgeAuth = {
  ...oidcShared,
  OIDC_CLIENT_ID: z.string().min(1).default('bionic-edge'),
  OIDC_CLIENT_SECRET: secret(16).optional(),
  OIDC_MFA_ACR_VALUES: z.string().default('mfa').transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean)),
  SESSION_KEYS: sessionKeys.optional(),
  SESSION_IDLE_SECONDS: seconds(30 * 60),
  SESSION_ABSOLUTE_SECONDS: seconds(12 * 3600),
  /** Seconds an edge instance reuses a session it read from KV (0: every request asks KV). */
  SESSION_CACHE_SECONDS: z.coerce.number().int().min(0).max(300).default(5),
  COOKIE_SECURE: bool.default('true'),
  RATE_LIMIT_LOGIN_PER_MINUTE: perMinute(20),
  RATE_LIMIT_API_PER_MINUTE: perMinute(600),
  /** Header a trusted proxy sets to the client address (e.g. cf-connecting-ip); unset = the socket address. */
  CLIENT_IP_HEADER: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be a header name').optional(),
};

const edgeOnly = {
  EDGE_HOST: z.string().min(1).default('127.0.0.1'),
  EDGE_PORT: port.default(8080),
  PUBLIC_URL: url.optional(),
  WORKER_URL: url.default('http://127.0.0.1:8081'),
};

const workerOnly = {
  WORKER_HOST: z.string().min(1).default('127.0.0.1'),
  WORKER_PORT: port.default(8081),
  CRM_DATABASE_URL: url,
  TELEMETRY_DATABASE_URL: url,
  PLATFORM_DATABASE_URL: url,
  PG_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  CLICKHOUSE_URL: url.optional(),
  CLICKHOUSE_USER: z.string().default('default'),
  CLICKHOUSE_PASSWORD: z.string().default(''),
  CLICKHOUSE_DATABASE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an identifier').default('bionic'),
  CHDB_PATH: z.string().min(1).default('./data/chdb'),
  MIGRATE_ON_START: bool.default('true'),
};

export const edgeEnvSchema = z.object({ ...common, ...kv, ...objectStore, ...edgeOnly, ...edgeAuth, ...reportsEdgeEnv, ...telemetryEnv, ...regionsEnv });
export const workerEnvSchema = z.object({ ...common, ...kv, ...objectStore, ...workerOnly, ...oidcShared, ...busEnv, ...cdcEnv, ...reportsWorkerEnv, ...sagaEnv, ...telemetryEnv, ...etlEnv, ...analyticsEnv, ...regionsEnv });

// Rules across variables; the plain object schemas above stay introspectable (`.shape`).
const edgeEnvChecked = edgeEnvSchema.superRefine((e, ctx) => {
  const need = (variable: string, message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path: [variable], message });
  if (e.OIDC_ISSUER) {
    if (!e.OIDC_CLIENT_SECRET) need('OIDC_CLIENT_SECRET', 'is required when OIDC_ISSUER is set');
    if (!e.SESSION_KEYS) need('SESSION_KEYS', 'is required when OIDC_ISSUER is set');
  } else if (e.BIONIC_ENV === 'production') need('OIDC_ISSUER', 'is required in production');
  if (e.BIONIC_ENV === 'production' && !e.COOKIE_SECURE) need('COOKIE_SECURE', 'must be true in production');
  if (e.SESSION_IDLE_SECONDS > e.SESSION_ABSOLUTE_SECONDS) need('SESSION_IDLE_SECONDS', 'must not exceed SESSION_ABSOLUTE_SECONDS');
  const metricsProblem = metricsTokenProblem(e);
  if (metricsProblem) need('METRICS_TOKEN', metricsProblem);
});
const workerEnvChecked = workerEnvSchema.superRefine((e, ctx) => {
  if (!e.OIDC_ISSUER && e.BIONIC_ENV === 'production') ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['OIDC_ISSUER'], message: 'is required in production' });
  const metricsProblem = metricsTokenProblem(e);
  if (metricsProblem) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['METRICS_TOKEN'], message: metricsProblem });
  const analyticsProblem = analyticsKeyProblem(e);
  if (analyticsProblem) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['ANALYTICS_PSEUDONYM_KEY'], message: analyticsProblem });
  const cdcNames = { slot: e.CDC_SLOT, publication: e.CDC_PUBLICATION, snapshotSourceUrl: e.CDC_SNAPSHOT_SOURCE_URL ?? null };
  for (const p of cdcRegionProblems(cdcNames, e.REGIONS)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [p.variable], message: p.message });
});

type EdgeEnv = z.output<typeof edgeEnvSchema>;
type WorkerEnv = z.output<typeof workerEnvSchema>;

export interface KvConfig { url: string; token: string }
export interface ObjectStoreConfig {
  endpoint?: string; region: string; accessKeyId: string; secretAccessKey: string;
  bucket: string; forcePathStyle: boolean;
}
export interface OlapConfig {
  /** A ClickHouse server URL; when absent, chDB runs in-process on `chdbPath`. */
  url?: string; user: string; password: string; database: string; chdbPath: string;
}
/** Sign-in at the edge; `null` when no identity provider is configured (everyone is anonymous). */
export interface EdgeAuthConfig {
  issuer: string; clientId: string; clientSecret: string; audience: string; jwksUrl?: string;
  /** `acr` values that count as a second factor (besides `amr` such as `otp`). */
  mfaAcrValues: string[];
  /** Key ring for sealed tokens; the first key seals. */
  sessionKeys: { kid: string; secret: string }[];
  idleSeconds: number; absoluteSeconds: number; cookieSecure: boolean;
  /** Seconds a session read from KV is reused in process; revocations elsewhere take this long to reach this instance. Default 5, 0 disables. */
  sessionCacheSeconds?: number;
}
/** Bearer-token verification on the workers; `null` when no identity provider is configured. */
export interface JwtAuthConfig { issuer: string; audience: string; jwksUrl?: string }
export interface RateLimitConfig { login: { limit: number; windowSeconds: number }; api: { limit: number; windowSeconds: number } }
export interface OltpConfig { crm: string; telemetry: string; platform: string; poolMax: number }

export interface EdgeConfig {
  env: EdgeEnv['BIONIC_ENV']; logLevel: EdgeEnv['LOG_LEVEL'];
  /** Metrics access and shutdown (shared/metrics/config.ts). */
  ops: OpsConfig;
  host: string; port: number; publicUrl: string; workerUrl: string;
  kv: KvConfig; objectStore: ObjectStoreConfig;
  auth: EdgeAuthConfig | null; rateLimits: RateLimitConfig; clientIpHeader?: string;
  reports: ReportsEdgeConfig;
  telemetry: TelemetryConfig;
  /** Data residency: the regions and their report buckets (shared/regions). */
  regions: RegionsConfig;
}
export interface WorkerConfig {
  env: WorkerEnv['BIONIC_ENV']; logLevel: WorkerEnv['LOG_LEVEL'];
  /** Metrics access and shutdown (shared/metrics/config.ts). */
  ops: OpsConfig;
  host: string; port: number; migrateOnStart: boolean;
  kv: KvConfig; objectStore: ObjectStoreConfig; olap: OlapConfig; oltp: OltpConfig;
  auth: JwtAuthConfig | null;
  bus: BusConfig;
  cdc: CdcConfig;
  saga: SagaConfig;
  reports: ReportsWorkerConfig;
  telemetry: TelemetryConfig;
  etl: EtlConfig;
  /** Pseudonymised cross-region analytics (shared/analytics). */
  analytics: AnalyticsConfig;
  /** Data residency: the regions and their personal-data stores (shared/regions). */
  regions: RegionsConfig;
}

function parse<S extends z.ZodTypeAny>(schema: S, env: Env): z.output<S> {
  // Empty strings mean "unset" so `.env` files may list a variable without a value.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => ({
        variable: String(i.path[0] ?? '(root)'),
        message: i.code === 'invalid_type' && i.received === 'undefined' ? 'is required but not set' : i.message,
      })),
    );
  }
  return result.data;
}

const kvOf = (e: EdgeEnv | WorkerEnv): KvConfig => ({ url: e.UPSTASH_REDIS_REST_URL, token: e.UPSTASH_REDIS_REST_TOKEN });
const storeOf = (e: EdgeEnv | WorkerEnv): ObjectStoreConfig => ({
  endpoint: e.S3_ENDPOINT, region: e.S3_REGION, accessKeyId: e.S3_ACCESS_KEY_ID,
  secretAccessKey: e.S3_SECRET_ACCESS_KEY, bucket: e.S3_BUCKET_REPORTS, forcePathStyle: e.S3_FORCE_PATH_STYLE,
});

/** Parses the edge's configuration; throws {@link ConfigError} naming every bad variable. */
export function parseEdgeConfig(env: Env): EdgeConfig {
  const e = parse(edgeEnvChecked, env);
  return {
    env: e.BIONIC_ENV, logLevel: e.LOG_LEVEL, ops: opsConfigOf(e), host: e.EDGE_HOST, port: e.EDGE_PORT,
    publicUrl: e.PUBLIC_URL ?? `http://${e.EDGE_HOST}:${e.EDGE_PORT}`, workerUrl: e.WORKER_URL,
    kv: kvOf(e), objectStore: storeOf(e),
    auth: e.OIDC_ISSUER && e.OIDC_CLIENT_SECRET && e.SESSION_KEYS ? {
      issuer: e.OIDC_ISSUER, clientId: e.OIDC_CLIENT_ID, clientSecret: e.OIDC_CLIENT_SECRET, audience: e.OIDC_AUDIENCE,
      jwksUrl: e.OIDC_JWKS_URL, mfaAcrValues: e.OIDC_MFA_ACR_VALUES, sessionKeys: e.SESSION_KEYS,
      idleSeconds: e.SESSION_IDLE_SECONDS, absoluteSeconds: e.SESSION_ABSOLUTE_SECONDS, cookieSecure: e.COOKIE_SECURE,
      sessionCacheSeconds: e.SESSION_CACHE_SECONDS,
    } : null,
    rateLimits: {
      login: { limit: e.RATE_LIMIT_LOGIN_PER_MINUTE, windowSeconds: 60 },
      api: { limit: e.RATE_LIMIT_API_PER_MINUTE, windowSeconds: 60 },
    },
    clientIpHeader: e.CLIENT_IP_HEADER,
    reports: reportsEdgeConfigOf(e),
    telemetry: telemetryConfigOf(e),
    regions: regionsConfigOf(env, 'edge', e.REGIONS, { reportsBucket: e.S3_BUCKET_REPORTS, s3Endpoint: e.S3_ENDPOINT, s3Region: e.S3_REGION }),
  };
}

/** Parses a worker's configuration; throws {@link ConfigError} naming every bad variable. */
export function parseWorkerConfig(env: Env): WorkerConfig {
  const e = parse(workerEnvChecked, env);
  return {
    env: e.BIONIC_ENV, logLevel: e.LOG_LEVEL, ops: opsConfigOf(e), host: e.WORKER_HOST, port: e.WORKER_PORT,
    migrateOnStart: e.MIGRATE_ON_START, kv: kvOf(e), objectStore: storeOf(e),
    olap: {
      url: e.CLICKHOUSE_URL, user: e.CLICKHOUSE_USER, password: e.CLICKHOUSE_PASSWORD,
      database: e.CLICKHOUSE_DATABASE, chdbPath: e.CHDB_PATH,
    },
    oltp: { crm: e.CRM_DATABASE_URL, telemetry: e.TELEMETRY_DATABASE_URL, platform: e.PLATFORM_DATABASE_URL, poolMax: e.PG_POOL_MAX },
    auth: e.OIDC_ISSUER ? { issuer: e.OIDC_ISSUER, audience: e.OIDC_AUDIENCE, jwksUrl: e.OIDC_JWKS_URL } : null,
    bus: busConfigOf(e),
    cdc: cdcConfigOf(e),
    saga: sagaConfigOf(e),
    reports: reportsWorkerConfigOf(e),
    telemetry: telemetryConfigOf(e),
    etl: etlConfigOf(e),
    analytics: analyticsConfigOf(e),
    regions: regionsConfigOf(env, 'worker', e.REGIONS, {
      crmDatabaseUrl: e.CRM_DATABASE_URL, telemetryDatabaseUrl: e.TELEMETRY_DATABASE_URL, clickhouseDatabase: e.CLICKHOUSE_DATABASE,
      reportsBucket: e.S3_BUCKET_REPORTS, s3Endpoint: e.S3_ENDPOINT, s3Region: e.S3_REGION,
    }),
  };
}
