/**
 * Starts the embedded stack (infra/dev/launcher.ts) as a child process for tests and benchmarks,
 * resolving on its `READY {…}` line, and stops it with SIGINT like a person pressing Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface LaunchedStack {
  child: ChildProcess;
  edge: string;
  worker: string;
  gateway: string;
  s3: string;
  /** JSON file with every connection detail (database URLs, KV token, S3 keys). */
  stackFile: string;
  pids: Record<string, number | null>;
  output: string[];
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

const ROOT = join(import.meta.dirname, '../..');

export function launchStack(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<LaunchedStack> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'infra/dev/launcher.ts', ...args], {
    cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGINT'); reject(new Error(`launcher not ready in time:\n${output.slice(-40).join('\n')}`)); }, opts.timeoutMs ?? 240_000);
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        output.push(line);
        if (line.startsWith('READY ')) {
          clearTimeout(timer);
          const info = JSON.parse(line.slice(6));
          resolve({ child, ...info, output, exited, stop: async () => { if (child.exitCode === null) child.kill('SIGINT'); return exited; } });
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => output.push(...c.toString('utf8').split('\n')));
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`launcher exited (${code}) before READY:\n${output.slice(-40).join('\n')}`)); });
  });
}
