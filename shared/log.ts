/**
 * Structured JSON logs. Secrets never reach the output: keys that look like credentials are
 * redacted and bearer tokens / JWTs inside strings are masked.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** Lifecycle events (listening, stopping): written at every level except `silent`. */
  notice(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const SECRET_KEY = /pass(word)?|secret|token|authorization|cookie|api[_-]?key|private|credential|session_?id|verifier|refresh|access_?token|id_?token|pseudonym_?key/i;
const SECRET_TEXT: [RegExp, string][] = [
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, '$1 [REDACTED]'],
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, '[REDACTED]'], // JWTs
  [/(\/\/[^:/@\s]+:)[^@\s]+@/g, '$1[REDACTED]@'], // credentials in URLs
  [/\b(password|passwd|secret|token|api[_-]?key|code_verifier)=([^\s&"]+)/gi, '$1=[REDACTED]'], // key=value pairs
  // OAuth parameters in URLs and form bodies (an authorization code is a credential until exchanged).
  [/((?:^|[?&\s])(?:code|state|access_token|refresh_token|id_token|client_secret|id_token_hint|logout_hint)=)[^\s&"#]+/gi, '$1[REDACTED]'],
  // Session cookies in Cookie / Set-Cookie text.
  [/\b(__Host-[A-Za-z0-9_-]+|session)=([^;\s"]+)/g, '$1=[REDACTED]'],
];

// Every pattern above needs one of these; a string with none of them is returned as it is (hot path).
const MAYBE_SECRET_TEXT = /[=@\s]|eyJ/;

/** Returns a copy of `value` with secrets replaced by `[REDACTED]`. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6) return '[…]';
  if (typeof value === 'string') {
    if (!MAYBE_SECRET_TEXT.test(value)) return value;
    let s = value;
    for (const [re, replacement] of SECRET_TEXT) s = s.replace(re, replacement);
    return s;
  }
  if (value instanceof Error) {
    return { name: value.name, message: redact(value.message, depth + 1), ...(value.cause ? { cause: redact(value.cause, depth + 1) } : {}) };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[REDACTED]' : redact(v, depth + 1);
    return out;
  }
  return value;
}

type Write = (line: string) => void;

/**
 * Methods on the prototype, fields merged only when a record is written: a per-request child
 * (edge/middleware/request-context.ts) costs one small object, and nothing when nothing logs.
 */
class JsonLogger implements Logger {
  constructor(
    private readonly min: number,
    private readonly write: Write,
    private readonly base: Record<string, unknown>,
    private readonly own: Record<string, unknown> | null,
  ) {}

  debug(msg: string, fields?: Record<string, unknown>): void { if (ORDER.debug >= this.min) this.emit('debug', msg, fields); }
  info(msg: string, fields?: Record<string, unknown>): void { if (ORDER.info >= this.min) this.emit('info', msg, fields); }
  warn(msg: string, fields?: Record<string, unknown>): void { if (ORDER.warn >= this.min) this.emit('warn', msg, fields); }
  error(msg: string, fields?: Record<string, unknown>): void { if (ORDER.error >= this.min) this.emit('error', msg, fields); }
  notice(msg: string, fields?: Record<string, unknown>): void { if (this.min !== ORDER.silent) this.emit('notice', msg, fields); }

  child(fields: Record<string, unknown>): Logger {
    return new JsonLogger(this.min, this.write, this.own ? { ...this.base, ...this.own } : this.base, fields);
  }

  private emit(level: Exclude<LogLevel, 'silent'> | 'notice', msg: string, fields?: Record<string, unknown>): void {
    // One flat record, filled key by key (later sources win, as with spreads, which V8 runs slowly here).
    const rec: Record<string, unknown> = { ts: new Date().toISOString(), level, msg: redact(msg) };
    copyRedacted(rec, this.base);
    if (this.own) copyRedacted(rec, this.own);
    if (fields) copyRedacted(rec, fields);
    this.write(JSON.stringify(rec));
  }
}

function copyRedacted(into: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const k in from) into[k] = SECRET_KEY.test(k) ? '[REDACTED]' : redact(from[k], 1);
}

/** Creates a JSON-lines logger writing through `write` (stdout by default via console.log). */
export function createLogger(opts: { level?: LogLevel; base?: Record<string, unknown>; write?: Write } = {}): Logger {
  return new JsonLogger(ORDER[opts.level ?? 'info'], opts.write ?? ((line: string) => console.log(line)), opts.base ?? {}, null);
}
