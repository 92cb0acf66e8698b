/**
 * Sessions in KV. The browser holds a 256-bit random id; KV holds the record under the SHA-256 of
 * that id (a leaked KV dump yields no usable cookies). Access and refresh tokens are sealed with
 * the key ring, bound to the record's key. Idle and absolute timeouts are checked atomically in
 * KV on every read (one round trip), which also slides the idle deadline.
 *
 * With `cacheSeconds` > 0 a loaded session is kept in process for that long, under the same
 * hashed key, so a busy session costs one KV round trip per cache lifetime instead of one per
 * request. This instance drops the entry at once on logout, refresh or any change it makes;
 * another instance may go on serving a session revoked elsewhere for at most `cacheSeconds`.
 * Timeouts are still checked on every hit, against the cached record.
 *
 * Data residency: when the signed-in person's region has a KV of its own (`regionalKv`), their
 * session lives there. The cookie then reads `<region>.<id>` and the KV key
 * `session:<region>:<hash of the whole cookie>`, so every later request finds the right KV from
 * the cookie alone, and a cookie whose region was altered hashes to a key that does not exist.
 */
import { base64url } from 'jose';
import type { Identity, Role } from '../../router/context.ts';
import type { Kv } from '../../shared/ports/kv.ts';
import type { KeyRing } from './seal.ts';
import { sha256 } from './sha256.ts';
import { TtlCache } from './ttl-cache.ts';

export interface SessionTokens { accessToken: string; refreshToken: string | null }

/** What KV stores. Times are epoch seconds on the edge's clock. Roles are a comma list: Lua's cjson turns `[]` into `{}`. */
export interface SessionRecord {
  v: 1;
  sub: string; username: string; roles: string; region?: string;
  createdAt: number; absExp: number; seenAt: number;
  /** When the access token must be refreshed (its `expires_in`, measured on the edge's clock). */
  accessExp: number;
  /** Bumped on every token refresh; compare-and-set writes use it. */
  rev: number;
  tokens: string;
}

export interface Session { key: string; record: SessionRecord; identity: Identity }

export interface SessionStoreOptions {
  /** The central KV: sessions of people whose region has no KV of its own. */
  kv: Kv;
  /** The KV of a region's people's sessions, if that region has one (data residency). */
  regionalKv?: (region: string) => Kv | undefined;
  keys: KeyRing;
  idleSeconds: number;
  absoluteSeconds: number;
  /** Seconds between idle-deadline writes (fewer writes; the deadline is that much coarser). */
  touchAfterSeconds?: number;
  /** How long a loaded session is reused in process without asking KV; 0 (the default) disables. */
  cacheSeconds?: number;
  /** Most sessions the in-process cache holds (default 10 000). */
  cacheMaxEntries?: number;
}

/** The edge's default for {@link SessionStoreOptions.cacheSeconds} (`SESSION_CACHE_SECONDS`). */
export const DEFAULT_SESSION_CACHE_SECONDS = 5;

// `<id>` or `<region>.<id>`; the region as shared/regions REGION_ID allows.
const ID_PATTERN = /^(?:([a-z][a-z0-9]{1,15})\.)?[A-Za-z0-9_-]{43}$/;
const REGIONAL_KEY = /^session:([a-z][a-z0-9]{1,15}):/;
const utf8 = new TextEncoder();
const PREFIX = 'session:';

// Returns the record and slides the idle deadline, or deletes it when a timeout has passed.
const TOUCH = `local v = redis.call('GET', KEYS[1])
if not v then return false end
local ok, s = pcall(cjson.decode, v)
if not ok then redis.call('DEL', KEYS[1]) return false end
local now, idle, touch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if now >= tonumber(s.absExp) or now - tonumber(s.seenAt) >= idle then redis.call('DEL', KEYS[1]) return false end
if now - tonumber(s.seenAt) >= touch then
  s.seenAt = now
  v = cjson.encode(s)
  redis.call('SET', KEYS[1], v, 'EX', math.max(1, math.min(idle, tonumber(s.absExp) - now)))
end
return v`;

// Writes only over the revision the writer read, so a logout or a parallel refresh is never undone.
const COMPARE_AND_SET = `local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local s = cjson.decode(v)
if tonumber(s.rev) ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1`;

export const identityOf = (r: SessionRecord): Identity => ({
  userId: r.sub, username: r.username, roles: r.roles ? (r.roles.split(',') as Role[]) : [],
  ...(r.region ? { region: r.region } : {}),
});

export function createSessionStore(opts: SessionStoreOptions) {
  const { keys } = opts;
  // The KV a key lives in: its region's, named in the key; a region without a KV here has no sessions.
  const kvOf = (key: string): Kv | null => {
    const region = REGIONAL_KEY.exec(key)?.[1];
    return region === undefined ? opts.kv : opts.regionalKv?.(region) ?? null;
  };
  const touchAfter = opts.touchAfterSeconds ?? Math.max(1, Math.min(60, Math.floor(opts.idleSeconds / 20)));
  const ttlFor = (r: SessionRecord, now: number) => Math.max(1, Math.min(opts.idleSeconds, r.absExp - now));
  const parse = (key: string, v: string | null): Session | null => {
    if (!v) return null;
    const record = JSON.parse(v) as SessionRecord;
    return record.v === 1 ? { key, record, identity: identityOf(record) } : null;
  };
  const cacheSeconds = opts.cacheSeconds ?? 0;
  const cache = new TtlCache<Session>(cacheSeconds > 0 ? opts.cacheMaxEntries ?? 10_000 : 0);
  // Concurrent misses of one session share one KV read.
  const loading = new Map<string, Promise<Session | null>>();
  // Bumped by every change this instance makes, so a read that started before it is not cached after it.
  let changes = 0;
  const live = (s: Session, now: number) => now < s.record.absExp && now - s.record.seenAt < opts.idleSeconds;
  const forget = (key: string) => { changes += 1; cache.delete(key); loading.delete(key); };
  // Synchronous SHA-256: this runs on every request (see sha256.ts for why not crypto.subtle here).
  const keyOf = (id: string): string | null => {
    const m = ID_PATTERN.exec(id);
    if (!m) return null;
    return `${PREFIX}${m[1] ? `${m[1]}:` : ''}${base64url.encode(sha256(utf8.encode(id)))}`;
  };
  const remember = (key: string, s: Session | null, now: number) => {
    forget(key);
    if (s) cache.set(key, s, now, cacheSeconds);
  };

  return {
    /** The KV key for a cookie value, or null when the value cannot be a session id. */
    async keyFor(id: string): Promise<string | null> {
      return keyOf(id);
    },
    /** {@link keyFor} without a promise, for the per-request path. */
    keyOf,
    /** The session this instance read from KV less than `cacheSeconds` ago, if still within its timeouts. */
    cached(key: string, now: number): Session | undefined {
      const hit = cache.get(key, now);
      return hit && live(hit, now) ? hit : undefined;
    },
    /** Loads a live session (from the in-process cache when enabled) and slides its idle deadline. */
    load(key: string, now: number): Promise<Session | null> {
      const hit = this.cached(key, now);
      if (hit) return Promise.resolve(hit);
      let p = loading.get(key);
      if (!p) {
        const seen = changes;
        const kv = kvOf(key);
        const read = kv ? kv.eval<string | null>(TOUCH, [key], [now, opts.idleSeconds, touchAfter]) : Promise.resolve(null);
        const started: Promise<Session | null> = read.then((v) => {
          const s = parse(key, v);
          if (seen === changes) {
            if (s) cache.set(key, s, now, cacheSeconds); else cache.delete(key);
          }
          return s;
        }).finally(() => { if (loading.get(key) === started) loading.delete(key); });
        loading.set(key, started);
        p = started;
      }
      return p;
    },
    /** Records what a refresh (here or by another instance) left behind; null when the session ended. */
    remember,
    /** Reads without touching (used while waiting for another request's refresh). */
    async peek(key: string): Promise<Session | null> {
      const kv = kvOf(key);
      const s = parse(key, kv ? await kv.get(key) : null);
      if (!s) forget(key);
      return s;
    },
    /** Creates a session under a fresh random id; the caller sets the cookie. */
    async create(identity: Identity, tokens: SessionTokens, accessExpiresIn: number, now: number): Promise<{ id: string; session: Session }> {
      const random = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
      const regional = identity.region !== undefined && opts.regionalKv?.(identity.region) !== undefined;
      const id = regional ? `${identity.region}.${random}` : random;
      const key = keyOf(id)!;
      const record: SessionRecord = {
        v: 1, sub: identity.userId, username: identity.username, roles: identity.roles.join(','),
        ...(identity.region ? { region: identity.region } : {}),
        createdAt: now, absExp: now + opts.absoluteSeconds, seenAt: now, accessExp: now + accessExpiresIn, rev: 0,
        tokens: await keys.seal(JSON.stringify(tokens), key),
      };
      await kvOf(key)!.set(key, JSON.stringify(record), { ttlSeconds: ttlFor(record, now), nx: true });
      return { id, session: { key, record, identity: identityOf(record) } };
    },
    /** Stores refreshed tokens over revision `expectRev`; null when the session changed or ended meanwhile. */
    async replaceTokens(s: Session, identity: Identity, tokens: SessionTokens, accessExpiresIn: number, now: number): Promise<Session | null> {
      const record: SessionRecord = {
        ...s.record, sub: identity.userId, username: identity.username, roles: identity.roles.join(','),
        accessExp: now + accessExpiresIn, rev: s.record.rev + 1, seenAt: now,
        tokens: await keys.seal(JSON.stringify(tokens), s.key),
      };
      if (identity.region) record.region = identity.region; else delete record.region;
      const kv = kvOf(s.key);
      const ok = kv ? await kv.eval<number>(COMPARE_AND_SET, [s.key], [JSON.stringify(record), s.record.rev, ttlFor(record, now)]) : 0;
      const next = Number(ok) === 1 ? { key: s.key, record, identity: identityOf(record) } : null;
      remember(s.key, next, now);
      return next;
    },
    /** The session's tokens, or null when they cannot be opened (unknown key id, tampering). */
    async tokens(s: Session): Promise<SessionTokens | null> {
      const plain = await keys.open(s.record.tokens, s.key);
      return plain === null ? null : (JSON.parse(plain) as SessionTokens);
    },
    async delete(key: string): Promise<void> {
      forget(key);
      await kvOf(key)?.del(key);
    },
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;
