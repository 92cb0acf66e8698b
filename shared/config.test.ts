import { describe, expect, it } from 'vitest';
import { ConfigError, parseEdgeConfig, parseWorkerConfig } from './config.ts';

const edgeEnv = {
  UPSTASH_REDIS_REST_URL: 'http://127.0.0.1:8079',
  UPSTASH_REDIS_REST_TOKEN: 'a-long-enough-token',
  S3_ACCESS_KEY_ID: 'k',
  S3_SECRET_ACCESS_KEY: 's',
};
const workerEnv = {
  ...edgeEnv,
  CRM_DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/crm',
  TELEMETRY_DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/telemetry',
  PLATFORM_DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/platform',
};

function problems(fn: () => unknown) {
  try { fn(); } catch (err) { if (err instanceof ConfigError) return err; throw err; }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('applies defaults', () => {
    const c = parseEdgeConfig(edgeEnv);
    expect(c.port).toBe(8080);
    expect(c.host).toBe('127.0.0.1');
    expect(c.objectStore.bucket).toBe('reports');
    expect(c.objectStore.forcePathStyle).toBe(false);
    expect(c.publicUrl).toBe('http://127.0.0.1:8080');
    expect(c.logLevel).toBe('info');
  });

  it('coerces numbers and booleans', () => {
    const c = parseWorkerConfig({ ...workerEnv, WORKER_PORT: '9000', S3_FORCE_PATH_STYLE: 'true', MIGRATE_ON_START: 'no', CLICKHOUSE_URL: 'http://ch:8123' });
    expect(c.port).toBe(9000);
    expect(c.objectStore.forcePathStyle).toBe(true);
    expect(c.migrateOnStart).toBe(false);
    expect(c.olap.url).toBe('http://ch:8123');
  });

  it('names every missing variable', () => {
    const err = problems(() => parseWorkerConfig({}));
    const vars = err.problems.map((p) => p.variable);
    expect(vars).toEqual(expect.arrayContaining(['UPSTASH_REDIS_REST_URL', 'CRM_DATABASE_URL', 'S3_ACCESS_KEY_ID']));
    expect(err.message).toContain('CRM_DATABASE_URL: is required but not set');
  });

  it('names the variable and what is wrong with its value', () => {
    const err = problems(() => parseEdgeConfig({ ...edgeEnv, EDGE_PORT: '70000', UPSTASH_REDIS_REST_URL: 'not a url', S3_BUCKET_REPORTS: 'Bad_Bucket' }));
    expect(err.problems.map((p) => p.variable).sort()).toEqual(['EDGE_PORT', 'S3_BUCKET_REPORTS', 'UPSTASH_REDIS_REST_URL']);
    expect(err.message).toMatch(/EDGE_PORT: .*65535/);
  });

  it('refuses a short KV token and an unknown log level', () => {
    const err = problems(() => parseEdgeConfig({ ...edgeEnv, UPSTASH_REDIS_REST_TOKEN: 'short', LOG_LEVEL: 'loud' }));
    expect(err.problems.map((p) => p.variable).sort()).toEqual(['LOG_LEVEL', 'UPSTASH_REDIS_REST_TOKEN']);
  });

  it('treats empty strings as unset', () => {
    expect(parseEdgeConfig({ ...edgeEnv, EDGE_PORT: '' }).port).toBe(8080);
  });
});
