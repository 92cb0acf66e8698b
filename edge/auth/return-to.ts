/**
 * Where to send the user after sign-in: a path on this site only. Anything that could leave the
 * origin — absolute URLs, scheme-relative `//host`, backslash tricks browsers normalise to `//`,
 * control characters — falls back to `/`.
 */
export function safeReturnTo(raw: string | undefined | null, origin: string): string {
  if (!raw || raw.length > 2048 || !raw.startsWith('/') || raw.startsWith('//') || raw.includes('\\')) return '/';
  // Browsers drop tabs and newlines inside URLs, which would turn `/\t/evil.example` into `//evil.example`.
  if (/[\u0000-\u001f\u007f]/.test(raw)) return '/';
  let url: URL;
  try {
    url = new URL(raw, origin);
  } catch {
    return '/';
  }
  if (url.origin !== new URL(origin).origin) return '/';
  return url.pathname + url.search + url.hash;
}
