/**
 * HTTP details of report responses: conditional requests (ETag / If-None-Match → 304), caching
 * headers (every report is private to its user: never stored by a shared cache), and the status
 * each {@link ReportsError} code becomes.
 */
import type { Context } from 'hono';
import type { ReportsErrorCode, ServedReport } from '../../shared/reports/ports.ts';
import { requestHeader, takeAnswerHeaders } from '../middleware/request-context.ts';

export const STATUS: Record<ReportsErrorCode, 400 | 401 | 403 | 404 | 503 | 504> = {
  BAD_REQUEST: 400, UNAUTHORIZED: 401, FORBIDDEN: 403, NOT_FOUND: 404, UNAVAILABLE: 503, TIMEOUT: 504,
};

/**
 * `private`: only the user's browser may keep it; `no-cache`: it must revalidate each time (a
 * version bump may have replaced it), which costs a 304 when nothing changed. `Vary: Cookie`
 * because the same URL names a different report for each signed-in user.
 */
export const PRIVATE_REVALIDATE = { 'cache-control': 'private, no-cache', vary: 'Cookie' } as const;

/** True when `If-None-Match` lists `etag` (weak comparison, as RFC 9110 requires for it) or is `*`. */
export function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  return ifNoneMatch.split(',').some((t) => t.trim() === '*' || bare(t) === bare(etag));
}

/** A report answer's headers that depend only on the report: computed once, copied per request. */
interface Answer {
  etag: string;
  ok: Record<string, string>;
  notModified: Record<string, string>;
}

function answerOf(etag: string, body: BodyInit, headers: Record<string, string>): Answer {
  // Copied key by key: V8 (Node 20) takes ~20 µs for `{ ...a, ...b, etag }` of records like these.
  const ok: Record<string, string> = { 'cache-control': PRIVATE_REVALIDATE['cache-control'], vary: PRIVATE_REVALIDATE.vary };
  for (const k in headers) ok[k] = headers[k]!;
  ok.etag = etag;
  const notModified: Record<string, string> = {};
  for (const k in ok) if (k !== 'content-type' && k !== 'content-disposition') notModified[k] = ok[k]!;
  if (body instanceof Uint8Array) ok['content-length'] = String(body.byteLength);
  return { etag, ok, notModified };
}

/**
 * 304 or 200 with `body`. The headers stay one plain record (bytes get their Content-Length):
 * @hono/node-server then writes the answer as it is, without building a Headers object.
 */
function respond(c: Context, answer: Answer, body: BodyInit): Response {
  const fresh = notModified(requestHeader(c, 'if-none-match'), answer.etag);
  const perRequest = takeAnswerHeaders(c);
  const fixed = fresh ? answer.notModified : answer.ok;
  const h: Record<string, string> = {};
  for (const k in fixed) h[k] = fixed[k]!;
  for (const k in perRequest) h[k] = perRequest[k]!;
  if (fresh) return new Response(null, { status: 304, headers: h });
  return new Response(c.req.method === 'HEAD' ? null : body, { status: 200, headers: h });
}

/** Answers 304 or 200 with `body` under a strong ETag, with the request's own answer headers (its id, rate limit). */
export function conditional(c: Context, etag: string, body: BodyInit, headers: Record<string, string>): Response {
  return respond(c, answerOf(etag, body, headers), body);
}

const JSON_ANSWERS = new WeakMap<ServedReport, Answer>();

/**
 * `GET /reports/<period>.json`, the edge's hottest answer: the stored bytes as they are, with the
 * headers that depend only on the report computed once per cached report.
 */
export function reportJson(c: Context, served: ServedReport): Response {
  const body = served.body as Uint8Array<ArrayBuffer>;
  let answer = JSON_ANSWERS.get(served);
  if (!answer) {
    answer = answerOf(`"${served.etag}"`, body, { 'content-type': 'application/json; charset=utf-8', 'x-report-version': String(served.version) });
    JSON_ANSWERS.set(served, answer);
  }
  return respond(c, answer, body);
}
