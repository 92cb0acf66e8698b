/**
 * Exit codes and error messages of the `bionic` CLI. Scripts rely on the codes, people on the
 * messages: every failure ends in one line naming what went wrong, never a stack trace (set
 * `LOG_LEVEL=debug` to get the trace as well).
 */
import { ConfigError } from '../../shared/config.ts';
import { MigrationError } from '../db/migrate.ts';

/** Exit codes, the same for every command (and the tools `etl`, `cdc`, `seed` hand over to). */
export const EXIT = {
  /** Done. */
  OK: 0,
  /** Failed: a service was unreachable, a migration failed, a run failed. */
  FAILURE: 1,
  /** Bad usage: unknown command or option, a bad value, invalid configuration. */
  USAGE: 2,
  /** Nothing done on purpose: `etl run` found another run in progress. */
  SKIPPED: 3,
  /** What was asked for does not exist (`saga show` of an unknown saga). */
  NOT_FOUND: 4,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the CLI explains itself: `message` is shown as is and the process exits with `exitCode`. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(message: string, readonly exitCode: ExitCode = EXIT.FAILURE, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Network error codes that mean "the service is not there" (Node's and postgres.js's own). */
const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  CONNECT_TIMEOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  CONNECTION_CLOSED: 'connection closed',
  CONNECTION_ENDED: 'connection closed',
};

/** Why `err` means the service cannot be reached, or `undefined` when it is another kind of error. */
export function unreachableReason(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? UNREACHABLE[code] : undefined;
}

/** `url` without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

/** The message and exit code for any error that reaches the top of the CLI. */
export function explain(err: unknown): { message: string; exitCode: ExitCode } {
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  // ConfigError's message lists every bad variable, one per line: the one multi-line message.
  if (err instanceof ConfigError) return { message: err.message, exitCode: EXIT.USAGE };
  if (err instanceof MigrationError) return { message: oneLine(err.message), exitCode: EXIT.FAILURE };
  const reason = unreachableReason(err);
  if (reason) return { message: `cannot reach a service: ${reason} (${oneLine((err as Error).message)})`, exitCode: EXIT.FAILURE };
  return { message: oneLine(err instanceof Error ? err.message : String(err)), exitCode: EXIT.FAILURE };
}

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ').trim();
