/**
 * Per-user notification streams in KV: how notifications stored by the workers (platform database,
 * or a regional saga's in its region's CRM, pushed to its region's KV) reach the edge, which has no
 * database. The worker pushes each notification after committing it; the edge reads what came
 * after a cursor. One sorted set per user, scored by a per-user sequence
 * number that KV assigns at push time — so the order users see is the order of pushes, and the
 * sequence number is the SSE event id a client resumes from.
 *
 * A push is idempotent: the member is the notification's canonical JSON, so pushing the same
 * notification again (a redelivered command) finds it and returns its sequence number.
 * Streams keep the newest {@link STREAM_KEEP} entries and expire {@link STREAM_TTL_SECONDS} after
 * the last push; the database stays the durable record.
 */
import type { Kv } from '../ports/kv.ts';

/** What a user receives. */
export interface NotificationItem {
  /** The notification's id in the database that stores it (platform, or the recipient's region's CRM). */
  id: string;
  kind: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  /** ISO 8601. */
  createdAt: string;
}

/** A notification as read from the stream, with its position. */
export interface StreamEntry extends NotificationItem {
  /** Position in the user's stream (1, 2, …): the SSE event id. */
  seq: number;
}

export const STREAM_KEEP = 500;
export const STREAM_TTL_SECONDS = 30 * 24 * 3600;

// Hash tags keep one user's keys in one slot on clustered Redis.
const tag = (user: string) => `{${encodeURIComponent(user)}}`;
export const streamKeys = (user: string) => ({
  stream: `notify:${tag(user)}:stream`,
  seq: `notify:${tag(user)}:seq`,
  leases: `notify:${tag(user)}:conn`,
});

/** Field order is fixed so the same notification always serialises to the same member. */
export function canonicalItem(n: NotificationItem): string {
  return JSON.stringify({ id: n.id, kind: n.kind, title: n.title, body: n.body, data: n.data, createdAt: n.createdAt });
}

const PUSH = `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s then return tonumber(s) end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], seq, ARGV[1])
local keep = tonumber(ARGV[2])
local n = redis.call('ZCARD', KEYS[1])
if n > keep then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - keep - 1) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return seq`;

const RECENT = `
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
return { head, redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES') }`;

/** Appends `item` to `recipient`'s stream once; returns its sequence number. */
export async function pushNotification(kv: Kv, recipient: string, item: NotificationItem): Promise<number> {
  const k = streamKeys(recipient);
  return Number(await kv.eval(PUSH, [k.stream, k.seq], [canonicalItem(item), STREAM_KEEP, STREAM_TTL_SECONDS]));
}

/** Decodes a `[member, score, member, score, …]` reply. */
export function entriesOf(reply: unknown): StreamEntry[] {
  const flat = Array.isArray(reply) ? (reply as unknown[]) : [];
  const out: StreamEntry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    out.push({ ...(JSON.parse(String(flat[i])) as NotificationItem), seq: Number(flat[i + 1]) });
  }
  return out;
}

/** The newest `limit` entries, newest first, and the stream's head sequence number. */
export async function recentNotifications(kv: Kv, user: string, limit: number): Promise<{ head: number; items: StreamEntry[] }> {
  const k = streamKeys(user);
  const [head, flat] = await kv.eval<[number, unknown]>(RECENT, [k.stream, k.seq], [limit]);
  return { head: Number(head), items: entriesOf(flat) };
}
