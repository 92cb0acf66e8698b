/**
 * Pseudonyms for cross-region analytics: `HMAC-SHA256(ANALYTICS_PSEUDONYM_KEY, "<region>:<userId>")`,
 * hex, the first 32 characters (128 bits). Stable per key, so one person's days line up across runs;
 * without the key a pseudonym cannot be turned back into a subject, nor recomputed from one. The
 * region is part of the input, so the same subject in two regions gets two unrelated pseudonyms.
 *
 * Computed here in Node, never in ClickHouse: a statement holding the key would be kept in the
 * server's query log.
 */
import { createHmac } from 'node:crypto';

/** Hex characters kept of the HMAC. */
export const PSEUDONYM_LENGTH = 32;

/** Pseudonymises subjects of one region with one key. */
export function pseudonymizer(key: string, region: string): (userId: string) => string {
  return (userId) => createHmac('sha256', key).update(`${region}:${userId}`).digest('hex').slice(0, PSEUDONYM_LENGTH);
}
