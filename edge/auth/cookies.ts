/**
 * The edge's cookies. With `secure` (the default and the only choice in production) they carry the
 * `__Host-` prefix, which browsers honour only with Secure, Path=/ and no Domain — so no other
 * subdomain can plant or shadow them. Plain-HTTP development (COOKIE_SECURE=false) drops the prefix.
 */
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';

export interface CookieSettings { secure: boolean }

const name = (base: string, s: CookieSettings) => (s.secure ? `__Host-${base}` : `bionic-${base}`);

export const sessionCookieName = (s: CookieSettings) => name('session', s);
/** Binds a pending sign-in (its `state`) to the browser that started it. */
export const loginCookieName = (s: CookieSettings) => name('login', s);

const attributes = (s: CookieSettings) => ({ httpOnly: true, secure: s.secure, sameSite: 'Lax' as const, path: '/' });

export function readCookie(c: Context, cookie: string): string | undefined {
  return getCookie(c, cookie);
}

/** A browser-session cookie: timeouts are enforced by the server, closing the browser ends it too. */
export function writeCookie(c: Context, cookie: string, value: string, s: CookieSettings, maxAgeSeconds?: number) {
  setCookie(c, cookie, value, { ...attributes(s), ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds }) });
}

export function clearCookie(c: Context, cookie: string, s: CookieSettings) {
  deleteCookie(c, cookie, attributes(s));
}
