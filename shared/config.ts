/**
 * Configuration: one zod schema per entry point, composed from shared parts, keyed by the
 * environment variable names themselves so every error names the variable at fault.
 * Parsed once at the composition root; nothing below the root reads the environment.
 */
import { z } from 'zod';

export type Env = Record<string, string | undefined>;

/** Thrown when the environment does not describe a usable configuration. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(
      'Invalid configuration:\n' +
        problems.map((p) => `  - ${p.variable}: ${p.message}`).join('\n'),
    );
  }
}

const url = z.string().url();
const port = z.coerce.number().int().min(0).max(65535);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const secret = (min: number) => z.string().min(min, `must be at least ${min} characters`);

const common = {
  BIONIC_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
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

export const edgeEnvSchema = z.object({ ...common, ...kv, ...objectStore, ...edgeOnly });
export const workerEnvSchema = z.object({ ...common, ...kv, ...objectStore, ...workerOnly });

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
export interface OltpConfig { crm: string; telemetry: string; platform: string; poolMax: number }

export interface EdgeConfig {
  env: EdgeEnv['BIONIC_ENV']; logLevel: EdgeEnv['LOG_LEVEL'];
  host: string; port: number; publicUrl: string; workerUrl: string;
  kv: KvConfig; objectStore: ObjectStoreConfig;
}
export interface WorkerConfig {
  env: WorkerEnv['BIONIC_ENV']; logLevel: WorkerEnv['LOG_LEVEL'];
  host: string; port: number; migrateOnStart: boolean;
  kv: KvConfig; objectStore: ObjectStoreConfig; olap: OlapConfig; oltp: OltpConfig;
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
  const e = parse(edgeEnvSchema, env);
  return {
    env: e.BIONIC_ENV, logLevel: e.LOG_LEVEL, host: e.EDGE_HOST, port: e.EDGE_PORT,
    publicUrl: e.PUBLIC_URL ?? `http://${e.EDGE_HOST}:${e.EDGE_PORT}`, workerUrl: e.WORKER_URL,
    kv: kvOf(e), objectStore: storeOf(e),
  };
}

/** Parses a worker's configuration; throws {@link ConfigError} naming every bad variable. */
export function parseWorkerConfig(env: Env): WorkerConfig {
  const e = parse(workerEnvSchema, env);
  return {
    env: e.BIONIC_ENV, logLevel: e.LOG_LEVEL, host: e.WORKER_HOST, port: e.WORKER_PORT,
    migrateOnStart: e.MIGRATE_ON_START, kv: kvOf(e), objectStore: storeOf(e),
    olap: {
      url: e.CLICKHOUSE_URL, user: e.CLICKHOUSE_USER, password: e.CLICKHOUSE_PASSWORD,
      database: e.CLICKHOUSE_DATABASE, chdbPath: e.CHDB_PATH,
    },
    oltp: { crm: e.CRM_DATABASE_URL, telemetry: e.TELEMETRY_DATABASE_URL, platform: e.PLATFORM_DATABASE_URL, poolMax: e.PG_POOL_MAX },
  };
}
