/**
 * The edge's per-request common chain in one middleware (one async step instead of four): the
 * request id (the caller's `X-Request-Id` when well-formed, else a fresh UUID; echoed on the
 * answer), the request's child logger, then — once answered — the request metrics and the access
 * line, and while the host drains, `Connection: close` (the lifecycle middleware's hint, here to
 * spare every request a step). It runs on every request, so it does only what it must: one header
 * read, a logger child that merges its fields only when something logs, Hono's route path computed once.
 *
 * Headers every answer carries (the request id; the rate limit's, added by the auth middleware)
 * wait in one plain record until the answer exists, and are added to it here. A handler that
 * builds its Response itself takes them first ({@link takeAnswerHeaders}) so they go into that
 * Response's own record, which @hono/node-server writes as it is — adding them afterwards would
 * turn it into a `Headers` object (the cached report's path, the edge's hottest, avoids that).
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from '../../shared/log.ts';
import type { OpsMetrics } from '../../shared/metrics/ops-metrics.ts';
import { logAccess } from './access-log.ts';
import type { Lifecycle } from './lifecycle.ts';
import { observeRequest } from './metrics.ts';

export const REQUEST_ID_HEADER = 'x-request-id';
// hono/request-id's rule: an id a client sends is kept only when short and plain.
const MAX_ID_LENGTH = 255;
const UNSAFE_ID = /[^\w\-=]/;
const CLOSE = { connection: 'close' };

/** Reads one request header by its lower-case name. */
export type HeaderReader = (c: Context, name: string) => string | undefined;

export interface RequestContextOptions {
  log: Logger;
  metrics: Pick<OpsMetrics, 'http'>;
  /**
   * How this runtime reads a request header most cheaply (edge/main.*.ts); absent: through the
   * Web Request. On Node the first read through it copies every header into a validated
   * `Headers` object, while Node has parsed them already.
   */
  header?: HeaderReader;
  /** Shutdown state: while draining, answers ask keep-alive clients to leave (lifecycle.ts). */
  lifecycle?: Pick<Lifecycle, 'closing'>;
}

export type RequestContextVariables = {
  requestId: string;
  log: Logger;
  /** Headers for the answer not yet on it; null once a handler took them. */
  answerHeaders: Record<string, string> | null;
  /** The runtime's header reader, when it has one (see {@link requestHeader}). */
  readHeader: HeaderReader;
};

type Ctx = Context<{ Variables: Partial<RequestContextVariables> }>;

const webHeader: HeaderReader = (c, name) => c.req.header(name);

/**
 * The reader for @hono/node-server (edge/main.node.ts): Node has parsed the headers already
 * (lower-case names, repeats joined), and hands its request to the app as `c.env.incoming`.
 */
export const nodeHeader: HeaderReader = (c, name) => {
  const v = (c.env as { incoming: { headers: Record<string, string | string[] | undefined> } }).incoming.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};

/** One request header by its lower-case name, read the way this runtime does it most cheaply. */
export function requestHeader(c: Context, name: string): string | undefined {
  return ((c as Ctx).get('readHeader') ?? webHeader)(c, name);
}

/** Adds `headers` to those the answer will carry (a no-op outside {@link requestContext} or once taken). */
export function addAnswerHeaders(c: Context, headers: Record<string, string>): void {
  const pending = (c as Ctx).get('answerHeaders');
  if (pending) for (const k in headers) pending[k] = headers[k]!;
}

/** Hands the answer's pending headers to a handler that builds its Response itself (see the module comment). */
export function takeAnswerHeaders(c: Context): Record<string, string> {
  const ctx = c as Ctx;
  const pending = ctx.get('answerHeaders');
  if (!pending) return {};
  ctx.set('answerHeaders', null);
  return pending;
}

export const requestContext = (opts: RequestContextOptions): MiddlewareHandler<{ Variables: RequestContextVariables }> =>
  async function requestContext(c, next) {
    const started = performance.now();
    if (opts.header) c.set('readHeader', opts.header);
    let id = (opts.header ?? webHeader)(c, REQUEST_ID_HEADER);
    if (!id || id.length > MAX_ID_LENGTH || UNSAFE_ID.test(id)) id = crypto.randomUUID();
    c.set('requestId', id);
    c.set('answerHeaders', { 'x-request-id': id });
    const log = opts.log.child({ requestId: id });
    c.set('log', log);
    try {
      await next();
      const left = c.get('answerHeaders');
      if (left) setHeaders(c, left);
      if (opts.lifecycle?.closing) setHeaders(c, CLOSE);
    } finally {
      const ms = performance.now() - started;
      const route = c.req.routePath;
      observeRequest(opts.metrics, c, route, ms / 1000);
      // The access line keeps Hono's route path ('/*' for unmatched), as the access-log middleware does.
      logAccess(log, c, route, ms);
    }
  };

function setHeaders(c: Context, headers: Record<string, string>): void {
  try {
    for (const k in headers) c.res.headers.set(k, headers[k]!);
  } catch {
    // Responses built from a fetch() have immutable headers: copy once.
    c.res = new Response(c.res.body, c.res);
    for (const k in headers) c.res.headers.set(k, headers[k]!);
  }
}
