import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/config.ts';
import { cliEnv, requireVars, runningStackEnv } from './env.ts';

const dirs: string[] = [];
function stackDir(pid: number | null): string {
  const dir = mkdtempSync(join(tmpdir(), 'bionic-cli-env-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'stack.json'), JSON.stringify({
    BIONIC_ENV: 'development', UPSTASH_REDIS_REST_URL: 'http://127.0.0.1:4001', crm: 'postgres://p:x@127.0.0.1:4000/crm',
    telemetry: 'postgres://p:x@127.0.0.1:4000/telemetry', platform: 'postgres://p:x@127.0.0.1:4000/platform', edge: 'http://127.0.0.1:8080',
  }));
  if (pid !== null) writeFileSync(join(dir, 'launcher.pid'), String(pid));
  return dir;
}
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

describe('the running embedded stack', () => {
  it('supplies the database URLs and its variables while its launcher lives', () => {
    const dir = stackDir(process.pid);
    expect(runningStackEnv(dir)).toMatchObject({
      CRM_DATABASE_URL: 'postgres://p:x@127.0.0.1:4000/crm', PLATFORM_DATABASE_URL: 'postgres://p:x@127.0.0.1:4000/platform',
      UPSTASH_REDIS_REST_URL: 'http://127.0.0.1:4001', CHDB_PATH: join(dir, 'chdb'),
    });
    expect(runningStackEnv(dir)).not.toHaveProperty('edge');
  });

  it('is ignored once the launcher is gone, or without a pid file', () => {
    const exited = spawnSync(process.execPath, ['-e', '']).pid!;
    expect(runningStackEnv(stackDir(exited))).toBeNull();
    expect(runningStackEnv(stackDir(null))).toBeNull();
  });

  it('only fills variables that are unset or empty', () => {
    const dir = stackDir(process.pid);
    const r = cliEnv({ BIONIC_DATA_DIR: dir, CRM_DATABASE_URL: 'postgres://mine/crm', PLATFORM_DATABASE_URL: '' });
    expect(r.stackDir).toBe(dir);
    expect(r.env.CRM_DATABASE_URL).toBe('postgres://mine/crm');
    expect(r.env.PLATFORM_DATABASE_URL).toBe('postgres://p:x@127.0.0.1:4000/platform');
    expect(cliEnv({ BIONIC_DATA_DIR: stackDir(null) }).stackDir).toBeNull();
  });
});

describe('requireVars', () => {
  it('checks only the variables asked for, with the worker\'s rules and defaults', () => {
    expect(requireVars({ PLATFORM_DATABASE_URL: 'postgres://h/p', CRM_DATABASE_URL: 'nonsense' }, ['PLATFORM_DATABASE_URL'])).toEqual({ PLATFORM_DATABASE_URL: 'postgres://h/p' });
    expect(requireVars({}, ['CLICKHOUSE_DATABASE'])).toEqual({ CLICKHOUSE_DATABASE: 'bionic' });
  });

  it('names every missing or bad variable', () => {
    let err: unknown;
    try { requireVars({ CRM_DATABASE_URL: 'nonsense', TELEMETRY_DATABASE_URL: '' }, ['CRM_DATABASE_URL', 'TELEMETRY_DATABASE_URL']); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      { variable: 'CRM_DATABASE_URL', message: 'Invalid url' },
      { variable: 'TELEMETRY_DATABASE_URL', message: 'is required but not set' },
    ]);
  });
});
