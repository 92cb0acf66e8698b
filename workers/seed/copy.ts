/** Bulk loading through PostgreSQL's COPY (text format) with postgres.js's writable stream. */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type postgres from 'postgres';

/** One field in COPY text format: `\N` for null, backslash escapes for the special characters. */
export function copyField(v: string | number | boolean | Date | null | undefined): string {
  if (v === null || v === undefined) return '\\N';
  if (v instanceof Date) return v.toISOString();
  const s = String(v);
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!) : s;
}

/** One COPY line from already escaped fields. */
export function copyLine(fields: readonly (string | number | boolean | Date | null | undefined)[]): string {
  return fields.map(copyField).join('\t') + '\n';
}

/**
 * Streams `chunks` (whole COPY text lines, any number per chunk) into `table (columns)`.
 * Backpressure is honoured: a slow server pauses the producer instead of buffering everything.
 */
export async function copyInto(
  sql: postgres.Sql | postgres.TransactionSql,
  table: string,
  columns: readonly string[],
  chunks: Iterable<string> | AsyncIterable<string>,
): Promise<void> {
  const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const writable = await sql.unsafe(`COPY ${ident(table)} (${columns.map(ident).join(', ')}) FROM STDIN`).writable();
  await pipeline(Readable.from(batch(chunks)), writable);
}

/** Joins small chunks into ~256 KiB writes: one write per row would dominate the cost. */
async function* batch(chunks: Iterable<string> | AsyncIterable<string>): AsyncGenerator<string> {
  let buf = '';
  for await (const c of chunks) {
    buf += c;
    if (buf.length >= 262_144) {
      yield buf;
      buf = '';
    }
  }
  if (buf) yield buf;
}
