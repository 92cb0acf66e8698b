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

const key32 = btoa(String.fromCharCode(...Array.from({ length: 32 }, (_, i) => i)));
const key32b = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8'; // the same 32 bytes as base64url, unpadded
const authEnv = {
  OIDC_ISSUER: 'https://sso.example/realms/bionicpro',
  OIDC_CLIENT_SECRET: 'a-long-client-secret',
  SESSION_KEYS: `k2:${key32},k1:${key32b}`,
};

function problems(fn: () => unknown) {
  try { fn(); } catch (err) { if (err instanceof ConfigError) return err; throw err; }
  throw new Error('expected a ConfigError');
}

const METRICS = 'metrics-token-0123456789';

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

  it('leaves sign-in off without an identity provider (development only)', () => {
    const c = parseEdgeConfig(edgeEnv);
    expect(c.auth).toBeNull();
    expect(c.rateLimits).toEqual({ login: { limit: 20, windowSeconds: 60 }, api: { limit: 600, windowSeconds: 60 } });
    expect(parseWorkerConfig(workerEnv).auth).toBeNull();
    const prod = problems(() => parseEdgeConfig({ ...edgeEnv, BIONIC_ENV: 'production', METRICS_TOKEN: METRICS }));
    expect(prod.problems).toEqual([{ variable: 'OIDC_ISSUER', message: 'is required in production' }]);
    expect(problems(() => parseWorkerConfig({ ...workerEnv, BIONIC_ENV: 'production', METRICS_TOKEN: METRICS })).problems.map((p) => p.variable)).toEqual(['OIDC_ISSUER']);
  });

  it('requires METRICS_TOKEN in production only, and defaults the shutdown grace period', () => {
    expect(parseEdgeConfig(edgeEnv).ops).toEqual({ metricsToken: undefined, shutdownGraceMs: 25_000 });
    expect(parseWorkerConfig({ ...workerEnv, METRICS_TOKEN: METRICS, SHUTDOWN_GRACE_MS: '5000' }).ops).toEqual({ metricsToken: METRICS, shutdownGraceMs: 5000 });
    const prod = problems(() => parseWorkerConfig({ ...workerEnv, BIONIC_ENV: 'production', OIDC_ISSUER: 'https://sso.example.com/realms/x' }));
    expect(prod.problems).toEqual([{ variable: 'METRICS_TOKEN', message: 'is required in production (protects /metrics)' }]);
    expect(problems(() => parseEdgeConfig({ ...edgeEnv, METRICS_TOKEN: 'short' })).problems.map((p) => p.variable)).toEqual(['METRICS_TOKEN']);
  });

  it('requires ANALYTICS_PSEUDONYM_KEY in production with regions; development falls back to the public key', () => {
    const prodEnv = { ...workerEnv, BIONIC_ENV: 'production', OIDC_ISSUER: 'https://sso.example.com/realms/x', METRICS_TOKEN: METRICS };
    const regionEnv = { REGIONS: 'ru', REGION_RU_CRM_DATABASE_URL: 'postgres://u:p@h:5432/crm_ru', REGION_RU_TELEMETRY_DATABASE_URL: 'postgres://u:p@h:5432/telemetry_ru' };
    expect(problems(() => parseWorkerConfig({ ...prodEnv, ...regionEnv })).problems)
      .toEqual([{ variable: 'ANALYTICS_PSEUDONYM_KEY', message: 'is required in production when REGIONS is set' }]);
    expect(parseWorkerConfig({ ...prodEnv, ...regionEnv, ANALYTICS_PSEUDONYM_KEY: 'a-long-pseudonym-key' }).analytics).toEqual({ pseudonymKey: 'a-long-pseudonym-key' });
    // Production without regions and without a key publishes nothing rather than use a public key.
    expect(parseWorkerConfig(prodEnv).analytics).toEqual({ pseudonymKey: null });
    expect(parseWorkerConfig({ ...workerEnv, ...regionEnv }).analytics.pseudonymKey).toBe('bionicpro-development-analytics-pseudonym-key');
    expect(problems(() => parseWorkerConfig({ ...workerEnv, ANALYTICS_PSEUDONYM_KEY: 'short' })).problems.map((p) => p.variable)).toEqual(['ANALYTICS_PSEUDONYM_KEY']);
  });

  it('parses the sign-in settings with defaults', () => {
    const c = parseEdgeConfig({ ...edgeEnv, ...authEnv });
    expect(c.auth).toEqual({
      issuer: 'https://sso.example/realms/bionicpro', clientId: 'bionic-edge', clientSecret: 'a-long-client-secret',
      audience: 'bionic-worker-api', jwksUrl: undefined, mfaAcrValues: ['mfa'],
      sessionKeys: [{ kid: 'k2', secret: key32 }, { kid: 'k1', secret: key32b }],
      idleSeconds: 1800, absoluteSeconds: 43200, cookieSecure: true, sessionCacheSeconds: 5,
    });
    const tuned = parseEdgeConfig({
      ...edgeEnv, ...authEnv, OIDC_MFA_ACR_VALUES: 'mfa, 2', SESSION_IDLE_SECONDS: '600', COOKIE_SECURE: 'false',
      RATE_LIMIT_LOGIN_PER_MINUTE: '5', RATE_LIMIT_API_PER_MINUTE: '100', CLIENT_IP_HEADER: 'cf-connecting-ip', SESSION_CACHE_SECONDS: '0',
    });
    expect(tuned.auth).toMatchObject({ mfaAcrValues: ['mfa', '2'], idleSeconds: 600, cookieSecure: false, sessionCacheSeconds: 0 });
    expect(tuned.rateLimits.login.limit).toBe(5);
    expect(tuned.clientIpHeader).toBe('cf-connecting-ip');
    expect(parseWorkerConfig({ ...workerEnv, OIDC_ISSUER: authEnv.OIDC_ISSUER }).auth).toEqual({ issuer: authEnv.OIDC_ISSUER, audience: 'bionic-worker-api', jwksUrl: undefined });
  });

  it('refuses unusable session keys and incomplete sign-in settings, naming the variable', () => {
    for (const bad of ['k1', 'k1:c2hvcnQ=', `bad kid:${key32}`, `k1:${key32},k1:${key32b}`, ',', 'k1:!!!not-base64!!!']) {
      const err = problems(() => parseEdgeConfig({ ...edgeEnv, ...authEnv, SESSION_KEYS: bad }));
      expect(err.problems.map((p) => p.variable), bad).toEqual(['SESSION_KEYS']);
    }
    const missing = problems(() => parseEdgeConfig({ ...edgeEnv, OIDC_ISSUER: authEnv.OIDC_ISSUER }));
    expect(missing.problems.map((p) => p.variable).sort()).toEqual(['OIDC_CLIENT_SECRET', 'SESSION_KEYS']);
    const insecure = problems(() => parseEdgeConfig({ ...edgeEnv, ...authEnv, BIONIC_ENV: 'production', COOKIE_SECURE: 'false', METRICS_TOKEN: METRICS }));
    expect(insecure.problems.map((p) => p.variable)).toEqual(['COOKIE_SECURE']);
    const timeouts = problems(() => parseEdgeConfig({ ...edgeEnv, ...authEnv, SESSION_IDLE_SECONDS: '7200', SESSION_ABSOLUTE_SECONDS: '3600' }));
    expect(timeouts.problems.map((p) => p.variable)).toEqual(['SESSION_IDLE_SECONDS']);
  });
});

