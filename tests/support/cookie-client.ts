/**
 * A browser-like HTTP client for end-to-end tests: a cookie jar (cookies are per host, not per
 * port, as in browsers; paths and expiry honoured), manual or followed redirects, and a hook that
 * sees every response (the token scanner uses it). `Secure` cookies are kept over http://, as
 * browsers do for localhost, but their attributes are recorded so tests can assert the flags.
 */
export interface StoredCookie {
  name: string; value: string; host: string; path: string; expiresAt: number | null;
  secure: boolean; httpOnly: boolean; sameSite: string | null; raw: string;
}

export interface FollowOptions { maxHops?: number; stopAt?: (url: URL) => boolean }

export interface Seen { url: string; method: string; status: number; headers: Headers; body: string }

export class CookieClient {
  readonly cookies: StoredCookie[] = [];
  readonly seen: Seen[] = [];
  constructor(private readonly defaults: { headers?: Record<string, string> } = {}) {}

  /** One request, no redirect following. The body is read and kept (also for scanning). */
  async request(url: string | URL, init: RequestInit = {}): Promise<Seen> {
    const u = new URL(url);
    const headers = new Headers({ ...this.defaults.headers, ...Object.fromEntries(new Headers(init.headers)) });
    const cookie = this.cookieHeader(u);
    if (cookie && !headers.has('cookie')) headers.set('cookie', cookie);
    const res = await fetch(u, { ...init, headers, redirect: 'manual' });
    for (const raw of res.headers.getSetCookie()) this.store(u, raw);
    const seen = { url: u.href, method: init.method ?? 'GET', status: res.status, headers: res.headers, body: await res.text() };
    this.seen.push(seen);
    return seen;
  }

  /**
   * Follows redirects (GET after 301/302/303) until a non-redirect answer; returns every hop.
   * `stopAt` ends the walk before requesting a URL it accepts (returned as `stoppedAt`).
   */
  async follow(url: string | URL, init: RequestInit = {}, opts: FollowOptions = {}): Promise<{ final: Seen; hops: Seen[]; stoppedAt?: URL }> {
    const hops: Seen[] = [];
    let next: URL = new URL(url);
    let req: RequestInit = init;
    for (let i = 0; i < (opts.maxHops ?? 15); i++) {
      const res = await this.request(next, req);
      hops.push(res);
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) return { final: res, hops };
      next = new URL(location, next);
      if (opts.stopAt?.(next)) return { final: res, hops, stoppedAt: next };
      req = res.status === 307 || res.status === 308 ? req : { method: 'GET' };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  /** Submits an HTML form found in `page` (by its action containing `actionIncludes`). */
  async submit(page: Seen, actionIncludes: string, fields: Record<string, string>, opts: FollowOptions = {}) {
    const forms = [...page.body.matchAll(/<form\b[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/g)];
    const form = forms.find((f) => decode(f[1]!).includes(actionIncludes));
    if (!form) throw new Error(`no form with action containing ${actionIncludes} in ${page.url}:\n${page.body.slice(0, 500)}`);
    const hidden = Object.fromEntries([...form[2]!.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)].map((m) => [m[1]!, decode(m[2]!)]));
    const body = new URLSearchParams({ ...hidden, ...fields });
    return this.follow(new URL(decode(form[1]!), page.url), { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, opts);
  }

  get(name: string, host?: string): StoredCookie | undefined {
    return this.cookies.find((c) => c.name === name && (host === undefined || c.host === host));
  }

  set(host: string, name: string, value: string, path = '/') {
    this.store(new URL(`http://${host}${path}`), `${name}=${value}; Path=${path}`);
  }

  clear(name?: string) {
    for (let i = this.cookies.length - 1; i >= 0; i--) if (!name || this.cookies[i]!.name === name) this.cookies.splice(i, 1);
  }

  /** The `cookie` header this client sends to `u`. */
  cookieHeader(u: URL): string {
    const now = Date.now();
    return this.cookies
      .filter((c) => c.host === u.hostname && (u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)) && (c.expiresAt === null || c.expiresAt > now))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`).join('; ');
  }

  private store(u: URL, raw: string) {
    const [pair = '', ...attrs] = raw.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    const attr = (k: string) => attrs.find((a) => a.toLowerCase().startsWith(k.toLowerCase()));
    const valueOf = (k: string) => attr(k)?.split('=').slice(1).join('=') ?? null;
    let expiresAt: number | null = null;
    const maxAge = valueOf('max-age');
    if (maxAge !== null) expiresAt = Date.now() + Number(maxAge) * 1000;
    else if (valueOf('expires')) expiresAt = Date.parse(valueOf('expires')!);
    const defaultPath = u.pathname.slice(0, u.pathname.lastIndexOf('/')) || '/';
    const cookie: StoredCookie = {
      name, value, host: u.hostname, path: valueOf('path') ?? defaultPath, expiresAt,
      secure: Boolean(attr('secure')), httpOnly: Boolean(attr('httponly')), sameSite: valueOf('samesite'), raw,
    };
    const i = this.cookies.findIndex((c) => c.name === name && c.host === cookie.host && c.path === cookie.path);
    if (i >= 0) this.cookies.splice(i, 1);
    if (expiresAt === null || expiresAt > Date.now()) this.cookies.push(cookie);
  }
}

const decode = (s: string) => s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
