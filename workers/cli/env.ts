/**
 * The environment CLI commands run with. Variables come from the process environment, like the
 * worker's; when some are unset and the embedded stack (`npm start` / `bionic start`) is running,
 * the rest are taken from its `stack.json`, so `bionic saga ls` or `bionic etl status` work next
 * to a running dev stack without copying URLs around.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError, workerEnvSchema, type Env } from '../../shared/config.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The embedded stack's data directory: `BIONIC_DATA_DIR` or `./data` (the launcher's rule). */
export const stackDataDir = (env: Env): string => resolve(env.BIONIC_DATA_DIR || join(ROOT, 'data'));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The variables of the embedded stack running from `dir`, or `null` when none runs there (a
 * `stack.json` left by a stopped stack names ports nobody listens on any more).
 */
export function runningStackEnv(dir: string): Env | null {
  const pidFile = join(dir, 'launcher.pid');
  const stackFile = join(dir, 'stack.json');
  if (!existsSync(pidFile) || !existsSync(stackFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return null;
  const stack = JSON.parse(readFileSync(stackFile, 'utf8')) as Record<string, unknown>;
  const vars: Env = {
    CRM_DATABASE_URL: stack.crm as string | undefined,
    TELEMETRY_DATABASE_URL: stack.telemetry as string | undefined,
    PLATFORM_DATABASE_URL: stack.platform as string | undefined,
    CHDB_PATH: join(dir, 'chdb'),
  };
  for (const [k, v] of Object.entries(stack)) if (/^[A-Z][A-Z0-9_]*$/.test(k) && typeof v === 'string') vars[k] = v;
  return vars;
}

/** `env` with unset (or empty) variables filled from the running embedded stack, and where they came from. */
export function cliEnv(env: Env): { env: Env; stackDir: string | null } {
  const dir = stackDataDir(env);
  const stack = runningStackEnv(dir);
  if (!stack) return { env, stackDir: null };
  const merged: Env = { ...env };
  let used = false;
  for (const [k, v] of Object.entries(stack)) {
    if (!merged[k] && v) { merged[k] = v; used = true; }
  }
  return { env: merged, stackDir: used ? dir : null };
}

type WorkerVar = keyof typeof workerEnvSchema.shape;

/**
 * Validates just the worker variables a command needs, with the worker's own rules.
 * @throws ConfigError naming every missing or bad variable
 */
export function requireVars<K extends WorkerVar>(env: Env, names: readonly K[]): { [P in K]: z.output<(typeof workerEnvSchema.shape)[P]> } {
  const schema = z.object(Object.fromEntries(names.map((n) => [n, workerEnvSchema.shape[n]])) as z.ZodRawShape);
  const cleaned = Object.fromEntries(names.filter((n) => env[n]).map((n) => [n, env[n]]));
  const r = schema.safeParse(cleaned);
  if (!r.success) {
    throw new ConfigError(r.error.issues.map((i) => ({
      variable: String(i.path[0]),
      message: i.code === 'invalid_type' && i.received === 'undefined' ? 'is required but not set' : i.message,
    })));
  }
  return r.data as { [P in K]: z.output<(typeof workerEnvSchema.shape)[P]> };
}
