/** `npm run etl` as an operator runs it: a child process reading the worker's environment. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCustomer, insertReadings, startEtlStack, type EtlStack } from '../support/etl-stack.ts';

let stack: EtlStack;
let env: Record<string, string>;

beforeAll(async () => {
  // No chDB in this process: the CLI opens its own directory.
  stack = await startEtlStack('etl-cli', { olap: false });
  await addCustomer(stack.crm, { id: 1, subject: 'sub-dana', chips: ['CHIP-D1'] });
  await insertReadings(stack.telemetry, [
    { chip: 'CHIP-D1', ts: '2026-03-09T10:00:00Z', kind: 'action', responseMs: 100, battery: 80 },
    { chip: 'CHIP-D1', ts: '2026-03-10T10:00:00Z', kind: 'error', errorCode: 'E_X', responseMs: 300, battery: 70 },
  ]);
  env = {
    PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...stack.kvEnv!,
    S3_ACCESS_KEY_ID: 'unused', S3_SECRET_ACCESS_KEY: 'unused',
    CRM_DATABASE_URL: stack.urls.crm, TELEMETRY_DATABASE_URL: stack.urls.telemetry, PLATFORM_DATABASE_URL: stack.urls.platform,
    CHDB_PATH: join(stack.dir, 'chdb-cli'),
  };
}, 180_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'workers/etl/cli.ts', ...args], { cwd: join(import.meta.dirname, '../..'), env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('etl CLI', () => {
  it('backfills day by day with progress on stderr, then lists the runs', async () => {
    const b = await cli('backfill', '--from', '2026-03-09', '--to', '2026-03-10');
    expect(b.stderr).toMatch(/backfill: 1\/2 chunks \(2026-03-09\) 1 readings, \d+\/s, elapsed .*, ETA /);
    expect(b.stderr).toMatch(/backfill: 2\/2 chunks \(2026-03-10\) 2 readings/);
    expect(b.stdout).toMatch(/^backfill done: 2 runs, 2 readings in /m);
    expect(b.code).toBe(0);
    const runs = await cli('runs', '--json');
    expect(runs.code).toBe(0);
    const items = JSON.parse(runs.stdout) as { kind: string; status: string; rowsRead: number }[];
    expect(items.map((r) => [r.kind, r.status, r.rowsRead])).toEqual([['backfill', 'succeeded', 1], ['backfill', 'succeeded', 1]]);
    // A backfill never moves the watermark; a run does.
    const run = await cli('run');
    expect(run.stdout).toMatch(/^#3 manual +succeeded/m);
    expect(run.code).toBe(0);
    expect((await cli('status')).stdout).toMatch(/^watermark: 20\d\d-/m);
  });

  it('explains itself and refuses bad usage with exit code 2', async () => {
    const help = await cli('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('backfill --from D --to D');
    const bad = await cli('backfill', '--from', '2026-03-10', '--to', '2026-03-01');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--to must not be before --from');
  });
});
