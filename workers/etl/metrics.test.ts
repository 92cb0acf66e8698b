/** The metrics are defined once: README's table must say exactly what metrics.ts says. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { METRICS } from './metrics.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('metric definitions', () => {
  it.each(METRICS.map((m) => [m.column, m] as const))('README documents %s as metrics.ts defines it', (_, m) => {
    expect(readme).toContain(`| \`${m.column}\` | ${m.type} | ${m.definition} |`);
  });

  it('match the columns of the ClickHouse tables, in order', () => {
    const ddl = readFileSync(new URL('../../infra/clickhouse/002_etl_hourly.sql', import.meta.url), 'utf8');
    const hourly = [...ddl.matchAll(/^\s{4}(\w+)\s+(\S.*?),?$/gm)].map((x) => x[1]);
    expect(hourly.slice(3, 3 + METRICS.length)).toEqual(METRICS.map((m) => m.column));
  });
});
