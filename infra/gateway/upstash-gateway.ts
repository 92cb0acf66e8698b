/**
 * The Upstash REST protocol over a real Redis, so the edge's `@upstash/redis` client runs unchanged
 * against self-hosted Redis: `POST /` (one command), `POST /pipeline`, `POST /multi-exec`,
 * `Authorization: Bearer <token>`, `{result}` / `{error}`, `Upstash-Encoding: base64`.
 *
 * Every command travels over one shared ioredis connection (RESP2, pipelined), so commands that change
 * connection state or block it are refused; transactions go out as one MULTI…EXEC write.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type { RunningService } from '../dev/services/types.ts';

export interface UpstashGatewayOptions {
  /** `redis://host:port[/db]` of the Redis behind the gateway. */
  redisUrl: string;
  /** The bearer token clients must present. */
  token: string;
  /** Listen address; 127.0.0.1 by default. */
  host?: string;
  /** Listen port; an OS-assigned free port by default. */
  port?: number;
  /** Receives structured records (never the token or command arguments). */
  log?: (rec: object) => void;
  /** Largest accepted request body; 10 MiB by default. */
  maxBodyBytes?: number;
}

type Arg = string | number | boolean;
interface Prepared { name: string; args: string[]; mapReply?: (reply: unknown) => unknown }

/** Thrown for requests the gateway refuses before they reach Redis; `status` is the HTTP answer. */
class RequestError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

// Commands that would change or block the one connection every client shares.
const REFUSED = new Set([
  'SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'SUNSUBSCRIBE', 'MONITOR',
  'MULTI', 'EXEC', 'DISCARD', 'WATCH', 'UNWATCH', 'SELECT', 'SWAPDB', 'QUIT', 'RESET', 'HELLO', 'AUTH', 'CLIENT',
  'BLPOP', 'BRPOP', 'BRPOPLPUSH', 'BLMOVE', 'BLMPOP', 'BZPOPMIN', 'BZPOPMAX', 'BZMPOP', 'WAIT', 'WAITAOF',
  'SYNC', 'PSYNC', 'REPLCONF', 'REPLICAOF', 'SLAVEOF', 'FAILOVER', 'SHUTDOWN', 'DEBUG',
]);

const isReplyError = (err: unknown): err is Error => err instanceof Error && err.name === 'ReplyError';
const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * `@upstash/ratelimit` scripts start with `#!lua flags=allow-key-locking`, a flag only Upstash knows;
 * real Redis rejects the script. The flag goes, the line stays (so Lua error line numbers still match).
 */
function stripUpstashFlags(script: string): string {
  const m = /^#!lua([^\n]*)/.exec(script);
  if (!m?.[1]?.includes('allow-key-locking')) return script;
  const rest = m[1].replace(/flags=(\S*)/, (_, flags: string) => {
    const kept = flags.split(',').filter((f) => f && f !== 'allow-key-locking');
    return kept.length ? `flags=${kept.join(',')}` : '';
  });
  const line = rest.includes('flags=') ? `#!lua${rest}` : '';
  return line + script.slice(m[0].length);
}

/** Maps the SHA1 clients computed over a script to the SHA1 of the script Redis actually caches. */
class ScriptShas {
  private readonly map = new Map<string, string>();
  rewrite(script: string): string {
    const stripped = stripUpstashFlags(script);
    if (stripped !== script) {
      if (this.map.size >= 10_000) this.map.delete(this.map.keys().next().value!);
      this.map.set(sha1(script), sha1(stripped));
    }
    return stripped;
  }
  resolve(sha: string): string { return this.map.get(sha.toLowerCase()) ?? sha; }
}

function isCommand(value: unknown): value is [string, ...Arg[]] {
  return Array.isArray(value) && typeof value[0] === 'string' && value[0] !== '' &&
    value.every((a) => typeof a === 'string' || typeof a === 'boolean' || (typeof a === 'number' && Number.isFinite(a)));
}

function prepare(command: [string, ...Arg[]], shas: ScriptShas): Prepared {
  const name = command[0].toUpperCase();
  const args = command.slice(1).map(String);
  if (REFUSED.has(name) || (name.startsWith('XREAD') && args.some((a) => a.toUpperCase() === 'BLOCK'))) {
    throw new RequestError(400, `ERR command '${name}' is not supported by this gateway`);
  }
  const sub = args[0]?.toUpperCase();
  if ((name === 'EVAL' || name === 'EVAL_RO') && args[0] !== undefined) args[0] = shas.rewrite(args[0]);
  if ((name === 'EVALSHA' || name === 'EVALSHA_RO') && args[0] !== undefined) args[0] = shas.resolve(args[0]);
  if (name === 'SCRIPT' && sub === 'EXISTS') return { name, args: args.map((a, i) => (i === 0 ? a : shas.resolve(a))) };
  if (name === 'SCRIPT' && sub === 'LOAD' && args[1] !== undefined) {
    const original = sha1(args[1]);
    args[1] = shas.rewrite(args[1]);
    // The client computed the SHA of what it sent; that is the name it will EVALSHA by.
    return { name, args, mapReply: () => original };
  }
  return { name, args };
}

/** RESP2 replies as JSON; strings (Redis's bytes) as UTF-8 or, when asked, base64. */
function encode(reply: unknown, base64: boolean): unknown {
  if (Buffer.isBuffer(reply)) return reply.toString(base64 ? 'base64' : 'utf8');
  if (typeof reply === 'string') return base64 ? Buffer.from(reply).toString('base64') : reply;
  if (Array.isArray(reply)) return reply.map((r) => encode(r, base64));
  if (reply instanceof Error) return encode(reply.message, base64); // error tables nested in script results
  return reply ?? null;
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > limit) return reject(new RequestError(413, `ERR request body exceeds ${limit} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new RequestError(413, `ERR request body exceeds ${limit} bytes`));
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts the gateway; resolves once Redis answered and the HTTP server listens. */
export async function startUpstashGateway(opts: UpstashGatewayOptions): Promise<RunningService & { port: number }> {
  if (!opts.token) throw new Error('startUpstashGateway: token must not be empty');
  const log = opts.log ?? (() => {});
  const limit = opts.maxBodyBytes ?? 10 * 1024 * 1024;
  const expected = sha256(`Bearer ${opts.token}`);
  const shas = new ScriptShas();
  // ioredis speaks RESP2 only (v5 has no `protocol` option). Upper-case names sent through
  // `callBuffer` bypass its reply transformers, so replies reach the client exactly as Redis sent them.
  // Auto-pipelining stays off: in ioredis 5.11 it drops the command name of `callBuffer` calls.
  const redis = new Redis(opts.redisUrl, {
    lazyConnect: true, maxRetriesPerRequest: 2, enableAutoPipelining: false, connectionName: 'upstash-gateway',
  });
  redis.on('error', (err: Error) => log({ level: 'warn', msg: 'redis connection error', error: err.message }));
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new Error(`upstash gateway: cannot reach Redis at ${opts.redisUrl}: ${(err as Error).message}`, { cause: err });
  }

  const toRow = ([err, reply]: [Error | null, unknown], p: Prepared, base64: boolean) =>
    err ? { error: err.message } : { result: encode(p.mapReply ? p.mapReply(reply) : reply, base64) };

  async function execute(path: string, body: unknown, base64: boolean): Promise<[number, unknown]> {
    if (path === '/') {
      if (!isCommand(body)) throw new RequestError(400, 'ERR the body must be a JSON array: [command, ...args] of strings, numbers or booleans');
      const p = prepare(body, shas);
      try {
        return [200, toRow([null, await redis.callBuffer(p.name, ...p.args)], p, base64)];
      } catch (err) {
        if (!isReplyError(err)) throw err; // lost connection and the like: 503 below
        return [400, { error: err.message }];
      }
    }
    if (!Array.isArray(body) || body.length === 0 || !body.every(isCommand)) {
      throw new RequestError(400, 'ERR the body must be a non-empty JSON array of commands, each [command, ...args]');
    }
    const prepared = body.map((c) => prepare(c, shas));
    const batch = path === '/multi-exec' ? redis.multi() : redis.pipeline();
    for (const p of prepared) batch.callBuffer(p.name, ...p.args);
    try {
      const rows = (await batch.exec()) ?? [];
      return [200, rows.map((r, i) => toRow(r as [Error | null, unknown], prepared[i]!, base64))];
    } catch (err) {
      // EXECABORT: a queued command was rejected, so nothing ran; name the culprits.
      const previous = (err as { previousErrors?: Error[] }).previousErrors ?? [];
      throw Object.assign(err as Error, { message: [(err as Error).message, ...previous.map((e) => e.message)].join('; ') });
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', ...(status === 413 ? { connection: 'close' } : {}) });
      res.end(JSON.stringify(payload));
    };
    try {
      const path = new URL(req.url ?? '/', 'http://gateway').pathname.replace(/\/+$/, '') || '/';
      const presented = sha256(String(req.headers.authorization ?? ''));
      if (!timingSafeEqual(presented, expected)) throw new RequestError(401, 'Unauthorized');
      if (req.method !== 'POST') throw new RequestError(405, `ERR method ${req.method} not allowed; use POST`);
      if (path !== '/' && path !== '/pipeline' && path !== '/multi-exec') throw new RequestError(404, `ERR unknown path ${path}`);
      const text = await readBody(req, limit);
      let body: unknown;
      try { body = JSON.parse(text); } catch { throw new RequestError(400, 'ERR the body is not valid JSON'); }
      const base64 = String(req.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64';
      const [status, payload] = await execute(path, body, base64);
      send(status, payload);
    } catch (err) {
      const status = err instanceof RequestError ? err.status : isReplyError(err) ? 400 : 503;
      const message = (err as Error).message;
      if (status !== 400) log({ level: status >= 500 ? 'error' : 'warn', msg: 'gateway request failed', status, path: req.url, error: message });
      if (!res.headersSent) send(status, { error: message });
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => { server.off('error', reject); resolve(); });
  }).catch(async (err) => { redis.disconnect(); throw err; });
  const { port, address } = server.address() as AddressInfo;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    server.once('close', () => resolve({ code: null, signal: null }));
  });
  const urlHost = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address;
  return {
    name: 'upstash-gateway',
    url: `http://${urlHost}:${port}`,
    port,
    exited,
    async stop() {
      // In-flight requests finish; idle keep-alive sockets are closed so `close` can complete.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
