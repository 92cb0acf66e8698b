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

const SECRET_KEY = /pass(word)?|secret|token|authorization|cookie|api[_-]?key|private|credential|session_?id|verifier|refresh|access_?token|id_?token/i;
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

/** Returns a copy of `value` with secrets replaced by `[REDACTED]`. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6) return '[…]';
  if (typeof value === 'string') {
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

/** Creates a JSON-lines logger writing through `write` (stdout by default via console.log). */
export function createLogger(opts: { level?: LogLevel; base?: Record<string, unknown>; write?: (line: string) => void } = {}): Logger {
  const min = ORDER[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => console.log(line));
  const base = opts.base ?? {};
  const emit = (level: Exclude<LogLevel, 'silent'> | 'notice', msg: string, fields?: Record<string, unknown>) => {
    if (level === 'notice' ? min === ORDER.silent : ORDER[level] < min) return;
    const rec = redact({ ...base, ...fields }) as Record<string, unknown>;
    write(JSON.stringify({ ts: new Date().toISOString(), level, msg: redact(msg), ...rec }));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    notice: (m, f) => emit('notice', m, f),
    child: (fields) => createLogger({ ...opts, base: { ...base, ...fields } }),
  };
}
