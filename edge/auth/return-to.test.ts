import { describe, expect, it } from 'vitest';
import { safeReturnTo } from './return-to.ts';

const origin = 'https://bionic.example';

describe('return-to after sign-in', () => {
  it('keeps same-origin paths with their query and fragment', () => {
    expect(safeReturnTo('/reports?period=2024-01#chart', origin)).toBe('/reports?period=2024-01#chart');
    expect(safeReturnTo('/', origin)).toBe('/');
  });

  it('refuses everything that could leave the site', () => {
    for (const evil of [
      'https://evil.example/', 'http://bionic.example.evil.example/', '//evil.example', '///evil.example', '/\\evil.example',
      '\\\\evil.example', 'javascript:alert(1)', 'data:text/html,x', '/\t/evil.example', '/\n/evil.example', ' //evil.example',
      'evil.example', '', undefined, null, '/' + 'a'.repeat(3000),
    ]) {
      expect(safeReturnTo(evil, origin), String(evil)).toBe('/');
    }
  });

  it('normalises dot segments without leaving the origin', () => {
    expect(safeReturnTo('/a/../../b', origin)).toBe('/b');
    expect(safeReturnTo('/%2F%2Fevil.example', origin)).toBe('/%2F%2Fevil.example');
  });
});
