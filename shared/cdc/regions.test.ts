import { describe, expect, it } from 'vitest';
import { ConfigError, parseWorkerConfig } from '../config.ts';
import { regionsConfigOf } from '../regions/config.ts';
import { CDC_DEFAULTS } from './config.ts';
import { cdcRegionsOf, CdcRegionError, chooseCdcRegion } from './regions.ts';

const fallbacks = { crmDatabaseUrl: 'postgres://u:p@central:5432/crm', clickhouseDatabase: 'bionic', reportsBucket: 'reports', s3Region: 'us-east-1' };
const regional = {
  REGION_RU_CRM_DATABASE_URL: 'postgres://u:p@ru:5432/crm_ru', REGION_RU_TELEMETRY_DATABASE_URL: 'postgres://u:p@ru:5432/telemetry_ru',
  REGION_EU_CRM_DATABASE_URL: 'postgres://u:p@eu:5432/crm_eu', REGION_EU_TELEMETRY_DATABASE_URL: 'postgres://u:p@eu:5432/telemetry_eu',
};
const problemsOf = (fn: () => unknown) => {
  try { fn(); } catch (err) { expect(err).toBeInstanceOf(ConfigError); return (err as ConfigError).problems; }
  throw new Error('expected a ConfigError');
};

describe('CDC per region', () => {
  it('keeps the central CRM and every name as configured without REGIONS', () => {
    const plans = cdcRegionsOf(CDC_DEFAULTS, regionsConfigOf({}, 'worker', undefined, fallbacks));
    expect(plans).toEqual([{ region: 'default', crmUrl: fallbacks.crmDatabaseUrl, options: CDC_DEFAULTS }]);
    expect(plans[0]!.options).toMatchObject({ slot: 'bionic_cdc', publication: 'bionic_cdc', sinkGroup: 'cdc-sink', topicPrefix: 'crm' });
  });

  it("gives each region its own CRM, slot, publication, sink group and topics, and never the central CRM", () => {
    const options = { ...CDC_DEFAULTS, slot: 'cdc', sinkGroup: 'sink', tables: ['orders'] };
    const plans = cdcRegionsOf(options, regionsConfigOf(regional, 'worker', ['ru', 'eu'], fallbacks));
    expect(plans.map((p) => [p.region, p.crmUrl, p.options.slot, p.options.publication, p.options.sinkGroup, p.options.topicPrefix])).toEqual([
      ['ru', regional.REGION_RU_CRM_DATABASE_URL, 'cdc_ru', 'bionic_cdc_ru', 'sink-ru', 'crm_ru'],
      ['eu', regional.REGION_EU_CRM_DATABASE_URL, 'cdc_eu', 'bionic_cdc_eu', 'sink-eu', 'crm_eu'],
    ]);
    expect(plans.every((p) => p.options.tables?.join() === 'orders' && p.options.snapshotSourceUrl === null)).toBe(true);
  });

  it('refuses names PostgreSQL would truncate and a single snapshot source with regions, naming the variable', () => {
    const regions = regionsConfigOf(regional, 'worker', ['ru', 'eu'], fallbacks);
    const long = { ...CDC_DEFAULTS, slot: 's'.repeat(61), snapshotSourceUrl: 'postgres://u:p@db:5432/crm' };
    expect(problemsOf(() => cdcRegionsOf(long, regions)).map((p) => p.variable)).toEqual(['CDC_SLOT', 'CDC_SNAPSHOT_SOURCE_URL']);
    // Without regions both are fine: the names are used as they are, the override applies.
    expect(cdcRegionsOf(long, regionsConfigOf({}, 'worker', undefined, fallbacks))[0]!.options.snapshotSourceUrl).toBe(long.snapshotSourceUrl);
  });

  it('the worker refuses CDC_SNAPSHOT_SOURCE_URL with REGIONS at start-up', () => {
    const env = {
      UPSTASH_REDIS_REST_URL: 'http://127.0.0.1:8079', UPSTASH_REDIS_REST_TOKEN: 'a-long-enough-token', S3_ACCESS_KEY_ID: 'k', S3_SECRET_ACCESS_KEY: 's',
      CRM_DATABASE_URL: fallbacks.crmDatabaseUrl, TELEMETRY_DATABASE_URL: 'postgres://u:p@c:5432/telemetry', PLATFORM_DATABASE_URL: 'postgres://u:p@c:5432/platform',
      ...regional, REGIONS: 'ru,eu',
    };
    expect(parseWorkerConfig(env).regions.regions).toHaveLength(2);
    const problems = problemsOf(() => parseWorkerConfig({ ...env, CDC_SNAPSHOT_SOURCE_URL: 'postgres://u:p@db:5432/crm' }));
    expect(problems).toEqual([{ variable: 'CDC_SNAPSHOT_SOURCE_URL', message: expect.stringMatching(/without REGIONS only/) }]);
  });

  it('chooses the region a request means', () => {
    expect(chooseCdcRegion(['default'])).toBe('default');
    expect(chooseCdcRegion(['ru'], 'ru')).toBe('ru');
    expect(chooseCdcRegion(['ru', 'eu'], 'eu')).toBe('eu');
    const err = (fn: () => unknown) => { try { fn(); } catch (e) { return e as CdcRegionError; } throw new Error('expected a CdcRegionError'); };
    const required = err(() => chooseCdcRegion(['ru', 'eu']));
    expect(required).toBeInstanceOf(CdcRegionError);
    expect([required.reason, required.message]).toEqual(['REGION_REQUIRED', 'CDC runs for several regions (ru, eu): name one']);
    const unknown = err(() => chooseCdcRegion(['ru', 'eu'], 'us'));
    expect([unknown.reason, unknown.message]).toEqual(['UNKNOWN_REGION', 'CDC does not run for region "us" (regions: ru, eu)']);
    expect(err(() => chooseCdcRegion(['default'], 'ru')).reason).toBe('UNKNOWN_REGION');
  });
});
