/**
 * TOTP second factor for the development identity provider: RFC 6238 (SHA-1, 6 digits, 30 s —
 * what Keycloak and authenticator apps default to), secrets kept in one owner-only JSON file in
 * the IdP's data directory. A code is accepted once: the last used time step is remembered, so a
 * code seen by someone else cannot be replayed (Keycloak's "reusable token: off").
 */
import { existsSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';

export const TOTP_ISSUER = 'BionicPRO';
const PERIOD = 30;
const DIGITS = 6;
const ALGORITHM = 'SHA1';
/** One step either side tolerates clock drift between phone and server. */
const WINDOW = 1;

interface Entry { secret: string; confirmedAt: string | null; lastCounter: number }

export interface TotpStore {
  /** The confirmed base32 secret, or null when the user has not enrolled. */
  secret(username: string): string | null;
  /** Starts (or restarts) enrolment: a fresh unconfirmed secret and its `otpauth://` URI. */
  beginEnrolment(username: string): Promise<{ secret: string; uri: string }>;
  /** The pending (unconfirmed) enrolment, if any. */
  pending(username: string): { secret: string; uri: string } | null;
  /** Checks a code against the confirmed secret (or, with `enrolling`, the pending one) and burns its time step. */
  verify(username: string, code: string, opts?: { enrolling?: boolean }): Promise<boolean>;
  /** Enrols users that have no secret yet with fresh secrets (demo setup). */
  preEnrol(usernames: readonly string[]): Promise<void>;
  /** A code for the user's secret that has not been used yet (for tests and the demo CLI). */
  nextCode(username: string, now?: number): { code: string; validFromMs: number };
}

const totpFor = (username: string, secret: string) =>
  new TOTP({ issuer: TOTP_ISSUER, label: username, secret: Secret.fromBase32(secret), algorithm: ALGORITHM, digits: DIGITS, period: PERIOD });

/** Opens (or creates) the store at `<dataDir>/totp.json`. */
export function openTotpStore(dataDir: string): TotpStore {
  const file = join(dataDir, 'totp.json');
  const entries: Record<string, Entry> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  let writing: Promise<void> = Promise.resolve();
  const persist = () => {
    const snapshot = JSON.stringify(entries, null, 2);
    // Writes are serialised and atomic (rename), so a crash never leaves half a file.
    writing = writing.then(async () => {
      await writeFile(`${file}.tmp`, snapshot, { mode: 0o600 });
      await rename(`${file}.tmp`, file);
    });
    return writing;
  };
  const key = (u: string) => u.toLowerCase();
  const fresh = (): Entry => ({ secret: new Secret({ size: 20 }).base32, confirmedAt: null, lastCounter: -1 });

  return {
    secret(username) {
      const e = entries[key(username)];
      return e?.confirmedAt ? e.secret : null;
    },
    async beginEnrolment(username) {
      const e = fresh();
      entries[key(username)] = e;
      await persist();
      return { secret: e.secret, uri: totpFor(username, e.secret).toString() };
    },
    pending(username) {
      const e = entries[key(username)];
      return e && !e.confirmedAt ? { secret: e.secret, uri: totpFor(username, e.secret).toString() } : null;
    },
    async verify(username, code, opts = {}) {
      const e = entries[key(username)];
      if (!e || Boolean(e.confirmedAt) === Boolean(opts.enrolling) || !/^\d{6}$/.test(code)) return false;
      const now = Date.now();
      const delta = TOTP.validate({ token: code, secret: Secret.fromBase32(e.secret), algorithm: ALGORITHM, digits: DIGITS, period: PERIOD, timestamp: now, window: WINDOW });
      if (delta === null) return false;
      const counter = TOTP.counter({ period: PERIOD, timestamp: now }) + delta;
      if (counter <= e.lastCounter) return false;
      e.lastCounter = counter;
      if (opts.enrolling) e.confirmedAt = new Date(now).toISOString();
      await persist();
      return true;
    },
    async preEnrol(usernames) {
      let changed = false;
      for (const u of usernames) {
        if (entries[key(u)]?.confirmedAt) continue;
        entries[key(u)] = { ...fresh(), confirmedAt: new Date().toISOString() };
        changed = true;
      }
      if (changed) await persist();
    },
    nextCode(username, now = Date.now()) {
      const e = entries[key(username)];
      if (!e) throw new Error(`${username} has no TOTP secret`);
      // The earliest time step that is both unused and within the accepted window.
      const current = TOTP.counter({ period: PERIOD, timestamp: now });
      const counter = Math.max(current, e.lastCounter + 1);
      const timestamp = counter * PERIOD * 1000;
      return { code: totpFor(username, e.secret).generate({ timestamp }), validFromMs: Math.max(now, (counter - WINDOW) * PERIOD * 1000) };
    },
  };
}
