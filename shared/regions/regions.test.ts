import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config-fields.ts';
import { createLogger } from '../log.ts';
import { assertSameRegion, regionOf, regionsConfigOf, ResidencyError, type RegionFallbacks, type RegionsConfig } from './index.ts';

const fallbacks: RegionFallbacks = {
  crmDatabaseUrl: 'postgres://u@db/crm', telemetryDatabaseUrl: 'postgres://u@db/telemetry', reportsBucket: 'reports', s3Region: 'us-east-1',
  clickhouseDatabase: 'bionic',
};
const twoRegions = {
  REGION_RU_CRM_DATABASE_URL: 'postgres://u@ru/crm', REGION_RU_TELEMETRY_DATABASE_URL: 'postgres://u@ru/telemetry',
  REGION_EU_CRM_DATABASE_URL: 'postgres://u@eu/crm', REGION_EU_TELEMETRY_DATABASE_URL: 'postgres://u@eu/telemetry',
  REGION_EU_CLICKHOUSE_DATABASE: 'analytics_eu',
  REGION_EU_REPORTS_BUCKET: 'eu-reports', REGION_EU_S3_ENDPOINT: 'https://s3.eu-central-1.amazonaws.com', REGION_EU_S3_REGION: 'eu-central-1',
};
const problemsOf = (fn: () => unknown) => {
  try { fn(); } catch (err) { if (err instanceof ConfigError) return err.problems; throw err; }
  throw new Error('expected a ConfigError');
};
const capture = () => {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger({ level: 'debug', write: (l) => lines.push(JSON.parse(l)) }) };
};

describe('region table from configuration', () => {
  it('without REGIONS is one implicit region on the global variables', () => {
    expect(regionsConfigOf({}, 'worker', undefined, fallbacks)).toEqual({
      implicit: true,
      regions: [{ id: 'default', crmDatabaseUrl: 'postgres://u@db/crm', telemetryDatabaseUrl: 'postgres://u@db/telemetry', clickhouseDatabase: 'bionic', reports: { bucket: 'reports', s3Region: 'us-east-1' } }],
    });
    expect(regionsConfigOf({}, 'edge', undefined, fallbacks).regions[0]).toEqual({ id: 'default', reports: { bucket: 'reports', s3Region: 'us-east-1' } });
  });

  it('reads REGION_<ID>_… per listed region, with per-region bucket defaults', () => {
    const c = regionsConfigOf(twoRegions, 'worker', ['ru', 'eu'], fallbacks);
    expect(c.implicit).toBe(false);
    expect(c.regions).toEqual([
      { id: 'ru', crmDatabaseUrl: 'postgres://u@ru/crm', telemetryDatabaseUrl: 'postgres://u@ru/telemetry', clickhouseDatabase: 'bionic_ru', reports: { bucket: 'reports-ru', s3Region: 'us-east-1' } },
      { id: 'eu', crmDatabaseUrl: 'postgres://u@eu/crm', telemetryDatabaseUrl: 'postgres://u@eu/telemetry', clickhouseDatabase: 'analytics_eu', reports: { bucket: 'eu-reports', endpoint: 'https://s3.eu-central-1.amazonaws.com', s3Region: 'eu-central-1' } },
    ]);
    // The edge holds no database URLs and does not need them.
    expect(regionsConfigOf({ REGION_RU_REPORTS_BUCKET: 'r-ru' }, 'edge', ['ru'], fallbacks).regions).toEqual([{ id: 'ru', reports: { bucket: 'r-ru', s3Region: 'us-east-1' } }]);
  });

  it('names every missing, bad, unknown-region and unknown-suffix variable at once', () => {
    const problems = problemsOf(() => regionsConfigOf({
      REGION_RU_CRM_DATABASE_URL: 'not a url', REGION_EU_REPORTS_BUCKET: 'Bad_Bucket', REGION_US_CRM_DATABASE_URL: 'postgres://u@us/crm',
      REGION_RU_CRM_DATABSE_URL: 'postgres://typo', REGION_EU_TELEMETRY_DATABASE_URL: '',
    }, 'worker', ['ru', 'eu'], fallbacks));
    expect(problems.map((p) => p.variable).sort()).toEqual([
      'REGION_EU_CRM_DATABASE_URL', 'REGION_EU_REPORTS_BUCKET', 'REGION_EU_TELEMETRY_DATABASE_URL', 'REGION_RU_CRM_DATABASE_URL',
      'REGION_RU_CRM_DATABSE_URL', 'REGION_RU_TELEMETRY_DATABASE_URL', 'REGION_US_CRM_DATABASE_URL',
    ]);
    expect(problems.find((p) => p.variable === 'REGION_US_CRM_DATABASE_URL')!.message).toMatch(/not listed in REGIONS/);
    expect(problems.find((p) => p.variable === 'REGION_EU_CRM_DATABASE_URL')!.message).toMatch(/required/);
  });

  it('a region\'s own KV needs both its URL and its token; the edge and the worker read it', () => {
    const ruKv = { REGION_RU_UPSTASH_REDIS_REST_URL: 'https://kv.ru.example', REGION_RU_UPSTASH_REDIS_REST_TOKEN: 't' };
    const edge = regionsConfigOf(ruKv, 'edge', ['ru', 'eu'], fallbacks);
    expect(edge.regions.map((r) => r.kv)).toEqual([{ url: 'https://kv.ru.example', token: 't' }, undefined]);
    const worker = regionsConfigOf({ ...twoRegions, ...ruKv }, 'worker', ['ru', 'eu'], fallbacks);
    expect(worker.regions.map((r) => r.kv)).toEqual([{ url: 'https://kv.ru.example', token: 't' }, undefined]);
    expect(problemsOf(() => regionsConfigOf({ REGION_EU_UPSTASH_REDIS_REST_URL: 'https://kv.eu.example' }, 'edge', ['ru', 'eu'], fallbacks)))
      .toEqual([{ variable: 'REGION_EU_UPSTASH_REDIS_REST_TOKEN', message: 'is required with REGION_EU_UPSTASH_REDIS_REST_URL' }]);
  });

  it('refuses a regional ClickHouse database shared with the central one or another region', () => {
    const problems = problemsOf(() => regionsConfigOf({
      ...twoRegions, REGION_RU_CLICKHOUSE_DATABASE: 'bionic', REGION_EU_CLICKHOUSE_DATABASE: 'shared_x',
    }, 'worker', ['ru', 'eu'], fallbacks));
    expect(problems).toEqual([{ variable: 'REGION_RU_CLICKHOUSE_DATABASE', message: 'must differ from the central CLICKHOUSE_DATABASE (bionic)' }]);
    const clash = problemsOf(() => regionsConfigOf({ ...twoRegions, REGION_RU_CLICKHOUSE_DATABASE: 'analytics_eu' }, 'worker', ['ru', 'eu'], fallbacks));
    expect(clash).toEqual([{ variable: 'REGION_EU_CLICKHOUSE_DATABASE', message: 'must differ from REGION_RU_CLICKHOUSE_DATABASE (analytics_eu)' }]);
    expect(problemsOf(() => regionsConfigOf({ ...twoRegions, REGION_RU_CLICKHOUSE_DATABASE: 'x-y' }, 'worker', ['ru', 'eu'], fallbacks))[0]!.message)
      .toMatch(/identifier/);
  });
});

describe('residency guard', () => {
  const config: RegionsConfig = regionsConfigOf(twoRegions, 'worker', ['ru', 'eu'], fallbacks);

  it('regionOf takes a configured region claim, and refuses a missing or unknown one with a log line', () => {
    expect(regionOf({ sub: 's1', region: 'ru' }, config)).toBe('ru');
    expect(regionOf({ userId: 's2', region: 'eu' }, config)).toBe('eu');
    const { lines, log } = capture();
    expect(() => regionOf({ sub: 's3' }, config, log)).toThrow(expect.objectContaining({ reason: 'NO_REGION', code: 'FORBIDDEN' }));
    expect(() => regionOf({ sub: 's4', region: 'us' }, config, log)).toThrow(expect.objectContaining({ reason: 'UNKNOWN_REGION' }));
    expect(lines.map((l) => [l.msg, l.reason, l.subject])).toEqual([['residency.refused', 'NO_REGION', 's3'], ['residency.refused', 'UNKNOWN_REGION', 's4']]);
  });

  it('with the implicit region everyone is local, whatever the claim says', () => {
    const implicit = regionsConfigOf({}, 'worker', undefined, fallbacks);
    expect(regionOf({ region: 'eu' }, implicit)).toBe('default');
    expect(regionOf({}, implicit)).toBe('default');
  });

  it('assertSameRegion passes within a region and refuses across, as FORBIDDEN / 403, logging residency.refused', () => {
    const { lines, log } = capture();
    expect(() => assertSameRegion('eu', 'eu', 'report', log)).not.toThrow();
    expect(lines).toEqual([]);
    let err: unknown;
    try { assertSameRegion('ru', 'eu', 'report', log, 'sub-1'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ResidencyError);
    const r = err as ResidencyError;
    expect([r.code, r.httpStatus, getHTTPStatusCodeFromError(r), r.reason, r.actorRegion, r.dataRegion]).toEqual(['FORBIDDEN', 403, 403, 'CROSS_REGION', 'ru', 'eu']);
    expect(r.message).toBe('Data residency: report of region eu cannot be used from region ru');
    expect(lines).toEqual([expect.objectContaining({
      level: 'warn', msg: 'residency.refused', event: 'residency.refused', reason: 'CROSS_REGION', actorRegion: 'ru', dataRegion: 'eu', what: 'report', subject: 'sub-1',
    })]);
  });
});
