/**
 * How the auth layer says no, in the shape the caller understands: tRPC error envelopes on /trpc
 * (typed client errors), a small HTML page on the browser-facing sign-in routes, JSON elsewhere.
 * Every answer is `no-store`: none of them may be cached by a shared cache.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { appRouter } from '../../router/root.ts';
import { procedurePaths, TRPC_ENDPOINT, TRPCError, trpcErrorResponse } from '../../router/http.ts';

type TrpcCode = ConstructorParameters<typeof TRPCError>[0]['code'];

const TRPC_CODES: Record<number, TrpcCode> = {
  400: 'BAD_REQUEST', 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 429: 'TOO_MANY_REQUESTS', 503: 'SERVICE_UNAVAILABLE',
};

export const esc = (s: unknown) => String(s).replace(/[&<>"'`]/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A minimal page for the browser-facing routes (sign-in failures, signed out). */
export function page(title: string, message: string, link?: { href: string; text: string }): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · BionicPRO</title><style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#1c2430}
.msg{background:#f3f5f8;border-radius:8px;padding:1rem}a{color:#1f6feb}</style></head>
<body><main><h1>${esc(title)}</h1><p class="msg" id="message">${esc(message)}</p>${link ? `<p><a id="next" href="${esc(link.href)}">${esc(link.text)}</a></p>` : ''}</main></body></html>`;
}

const isTrpc = (c: Context) => c.req.path === TRPC_ENDPOINT || c.req.path.startsWith(`${TRPC_ENDPOINT}/`);
const isBrowserPage = (c: Context) => c.req.path === '/auth/login' || c.req.path === '/auth/callback';

const procedures = appRouter._def.procedures as unknown as Record<string, { _def: { type: string } } | undefined>;

/**
 * tRPC checks the HTTP method against the procedure type before anything else, so a refused
 * cross-site POST to a query would come back 405. The envelope is built for a request with the
 * method the procedures expect (and no body: the refusal is decided before any input is read).
 */
function asCallable(req: Request): Request {
  const paths = procedurePaths(new URL(req.url));
  const method = paths.length > 0 && paths.every((p) => procedures[p]?._def.type === 'mutation') ? 'POST' : 'GET';
  return new Request(req.url, { method, headers: req.headers });
}

/** Refuses the request with `status`; `headers` are added (rate-limit headers, Retry-After). */
export async function refuse(c: Context, status: ContentfulStatusCode, message: string, headers: Record<string, string> = {}): Promise<Response> {
  let res: Response;
  if (isTrpc(c)) {
    const trpc = await trpcErrorResponse(asCallable(c.req.raw), appRouter, new TRPCError({ code: TRPC_CODES[status] ?? 'BAD_REQUEST', message }));
    res = new Response(trpc.body, { status: trpc.status, headers: trpc.headers });
  } else if (isBrowserPage(c)) {
    res = new Response(page(status === 429 ? 'Too many attempts' : 'Sign-in problem', message, { href: '/auth/login', text: 'Try signing in again' }), {
      status, headers: { 'content-type': 'text/html; charset=utf-8' },
    });
  } else {
    res = Response.json({ error: { code: TRPC_CODES[status] ?? 'ERROR', message } }, { status });
  }
  for (const [k, v] of Object.entries(headers)) res.headers.set(k, v);
  res.headers.set('cache-control', 'no-store');
  return res;
}
