import { describe, expect, it } from 'vitest';
import { EXIT } from './errors.ts';
import { parseTargets } from './migrate.ts';
import { parseState, table } from './saga.ts';

describe('table', () => {
  it('pads every column but the last to its widest cell', () => {
    expect(table([['ID', 'STATE', 'NOTE'], ['order-1', 'DRAFT', ''], ['o-2', 'FINISHED', 'x']])).toEqual([
      'ID       STATE     NOTE',
      'order-1  DRAFT',
      'o-2      FINISHED  x',
    ]);
  });

  it('styles cells after padding, so escape codes do not shift columns', () => {
    const lines = table([['a', 'b'], ['long', 'c']], (c, _r, col) => (col === 0 ? `<${c}>` : c));
    expect(lines).toEqual(['<a   >  b', '<long>  c']);
  });
});

describe('arguments', () => {
  it('--state accepts the saga states in any case', () => {
    expect(parseState('draft')).toBe('DRAFT');
    expect(parseState(undefined)).toBeUndefined();
    expect(() => parseState('LOST')).toThrow(expect.objectContaining({ exitCode: EXIT.USAGE }));
  });

  it('migration targets default to the PostgreSQL databases and keep apply order', () => {
    expect(parseTargets([])).toEqual(['crm', 'telemetry', 'platform']);
    expect(parseTargets(['platform', 'crm', 'clickhouse'])).toEqual(['crm', 'platform', 'clickhouse']);
    expect(() => parseTargets(['crm', 'oops'])).toThrow(/unknown migration target "oops"/);
  });
});
