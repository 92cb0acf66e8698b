import { describe, expect, it } from 'vitest';
import { chColumnType, chFromText, chIdent, chString, chTypeOf, decoderFor } from './pg-types.ts';

const numeric = (p: number, s: number) => ((p << 16) | s) + 4;

describe('PostgreSQL → ClickHouse types', () => {
  it('maps column types, keeping numerics exact', () => {
    expect(chTypeOf(16, -1)).toBe('Bool');
    expect(chTypeOf(20, -1)).toBe('Int64');
    expect(chTypeOf(1700, numeric(12, 2))).toBe('Decimal(12, 2)');
    expect(chTypeOf(1700, -1)).toBe('String');
    expect(chTypeOf(1700, numeric(100, 2))).toBe('String');
    expect(chTypeOf(1184, -1)).toBe("DateTime64(6, 'UTC')");
    expect(chTypeOf(3802, -1)).toBe('String');
    expect(chTypeOf(1007, -1)).toBe('String'); // int4[]
    expect(chColumnType({ chType: 'Int64', nullable: true })).toBe('Nullable(Int64)');
  });

  it('decodes pgoutput text without losing precision', () => {
    expect(decoderFor(16)('t')).toBe(true);
    expect(decoderFor(23)('-42')).toBe(-42);
    expect(decoderFor(20)('9007199254740993')).toBe('9007199254740993');
    expect(decoderFor(1700)('12345678901234567890.123')).toBe('12345678901234567890.123');
    expect(decoderFor(701)('0.1')).toBe(0.1);
    expect(decoderFor(701)('NaN')).toBe('NaN');
    expect(decoderFor(1184)('2024-05-01 10:20:30.123456+00')).toBe('2024-05-01T10:20:30.123456Z');
    expect(decoderFor(1184)('2024-05-01 01:20:30.5+09')).toBe('2024-04-30T16:20:30.5Z');
    expect(decoderFor(1184)('2024-05-01 10:20:30-05:30')).toBe('2024-05-01T15:50:30Z');
    expect(decoderFor(1114)('2024-05-01 10:20:30')).toBe('2024-05-01T10:20:30');
    expect(decoderFor(1184)('infinity')).toBe('2299-12-31T23:59:59.999999Z');
    expect(decoderFor(3802)('{"a": 1}')).toBe('{"a": 1}');
    expect(decoderFor(1700, numeric(12, 2))('NaN')).toBeNull();
    expect(decoderFor(1700)('NaN')).toBe('NaN');
  });

  it('builds ClickHouse conversions and quotes identifiers and strings', () => {
    expect(chFromText('x', { chType: 'Bool', nullable: true })).toBe("(x = 't')");
    expect(chFromText('x', { chType: 'Decimal(12, 2)', nullable: false })).toBe("CAST(nullIf(x, 'NaN') AS Nullable(Decimal(12, 2)))");
    expect(chFromText('x', { chType: 'Int64', nullable: true })).toBe('CAST(x AS Nullable(Int64))');
    expect(chFromText('x', { chType: "DateTime64(6, 'UTC')", nullable: true })).toContain("parseDateTime64BestEffort(x, 6, 'UTC')");
    expect(chIdent('we`ird')).toBe('`we\\`ird`');
    expect(chString("it's \\ here")).toBe("'it\\'s \\\\ here'");
  });
});
