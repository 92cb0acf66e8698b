/** The compiler keeps Node out of shared/, router/, edge/ (no Node types), and Deno agrees. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const bin = (name: string) => join(ROOT, 'node_modules/.bin', name);

async function output(cmd: string, args: string[]) {
  try {
    const r = await run(cmd, args, { cwd: ROOT, maxBuffer: 16 << 20, env: { ...process.env, NO_COLOR: '1' } });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('type checks', () => {
  it('tsc: shared/, router/, edge/ compile without Node types', { timeout: 180_000 }, async () => {
    const r = await output(bin('tsc'), ['-p', 'tsconfig.web.json', '--noEmit']);
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  });

  it('tsc: the whole project compiles (strict)', { timeout: 180_000 }, async () => {
    const r = await output(bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  });

  it('deno check passes on edge/, shared/, router/', { timeout: 180_000 }, async () => {
    const r = await output(bin('deno'), ['check', 'edge/main.deno.ts', 'edge/', 'shared/', 'router/']);
    expect(r.code, r.out).toBe(0);
  });
});
