/**
 * The edge's cookies. With `secure` (the default and the only choice in production) they carry the
 * `__Host-` prefix, which browsers honour only with Secure, Path=/ and no Domain — so no other
 * subdomain can plant or shadow them. Plain-HTTP development (COOKIE_SECURE=false) drops the prefix.
 */
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { requestHeader } from '../middleware/request-context.ts';

export interface CookieSettings { secure: boolean }

const name = (base: string, s: CookieSettings) => (s.secure ? `__Host-${base}` : `bionic-${base}`);

export const sessionCookieName = (s: CookieSettings) => name('session', s);
/** Binds a pending sign-in (its `state`) to the browser that started it. */
export const loginCookieName = (s: CookieSettings) => name('login', s);

const attributes = (s: CookieSettings) => ({ httpOnly: true, secure: s.secure, sameSite: 'Lax' as const, path: '/' });

// Values this edge writes (sealed ids, base64url): nothing to unquote or decode.
const PLAIN_VALUE = /^[A-Za-z0-9_-]+$/;

/**
 * The cookie's value. Read on every request, so the common case — the first `name=` at a pair
 * boundary holding a plain value — is found without parsing the whole header; anything else
 * (quoted, encoded, duplicates after an invalid one) goes to Hono's parser, whose answer it is.
 */
export function readCookie(c: Context, cookie: string): string | undefined {
  const header = requestHeader(c, 'cookie');
  if (!header) return undefined;
  const needle = `${cookie}=`;
  for (let at = header.indexOf(needle); at !== -1; at = header.indexOf(needle, at + 1)) {
    let before = at - 1;
    while (before >= 0 && (header[before] === ' ' || header[before] === '\t')) before--;
    if (before >= 0 && header[before] !== ';') continue;
    const end = header.indexOf(';', at);
    const value = header.slice(at + needle.length, end === -1 ? undefined : end).trim();
    return PLAIN_VALUE.test(value) ? value : getCookie(c, cookie);
  }
  return header.includes(cookie) ? getCookie(c, cookie) : undefined;
}

/** A browser-session cookie: timeouts are enforced by the server, closing the browser ends it too. */
export function writeCookie(c: Context, cookie: string, value: string, s: CookieSettings, maxAgeSeconds?: number) {
  setCookie(c, cookie, value, { ...attributes(s), ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds }) });
}

export function clearCookie(c: Context, cookie: string, s: CookieSettings) {
  deleteCookie(c, cookie, attributes(s));
}
