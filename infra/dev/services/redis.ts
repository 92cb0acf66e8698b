/**
 * The system `redis-server` (Debian package), private to this stack: loopback only, a free port,
 * append-only persistence in `dataDir`, no config file. Readiness is Redis's own log line.
 */
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { freePort } from '../free-port.ts';
import type { RunningService } from './types.ts';

export const REDIS_BINARY = 'redis-server';
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 15_000;

/** Starts `redis-server`; resolves once it accepts connections, rejects with its last output otherwise. */
export async function startRedis(opts: {
  dataDir: string;
  port?: number;
  onLog?: (line: string) => void;
}): Promise<RunningService & { port: number }> {
  const port = opts.port ?? (await freePort());
  await mkdir(opts.dataDir, { recursive: true });
  const args = [
    '--bind', '127.0.0.1',
    '--port', String(port),
    '--protected-mode', 'yes',
    '--dir', opts.dataDir,
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--daemonize', 'no',
  ];
  const child = spawn(REDIS_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  let partial = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => { markReady = resolve; });
  // stdout is drained for the whole life of the process: a full pipe would stall Redis's logging.
  const onData = (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      output.push(line);
      if (output.length > 50) output.shift();
      opts.onLog?.(line);
      if (line.includes('Ready to accept connections')) markReady();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  const spawnFailed = new Promise<never>((_, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT'
          ? new Error(`${REDIS_BINARY} was not found on PATH; install it with: apt-get install redis-server`, { cause: err })
          : new Error(`could not start ${REDIS_BINARY}: ${err.message}`, { cause: err }),
      );
    });
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const exitedEarly = exited.then(({ code, signal }) => {
    throw new Error(
      `${REDIS_BINARY} on port ${port} exited during startup (code ${code}, signal ${signal}):\n` +
        [...output, partial].join('\n').trim(),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(
      `${REDIS_BINARY} on port ${port} was not ready after ${START_TIMEOUT_MS} ms:\n${output.join('\n')}`,
    )), START_TIMEOUT_MS);
  });
  try {
    await Promise.race([ready, spawnFailed, exitedEarly, timedOut]);
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
    exitedEarly.catch(() => {}); // settled by design once the service stops
  }

  return {
    name: 'redis',
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    port,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // SIGTERM makes Redis flush the append-only file before exiting.
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      try {
        await exited;
      } finally {
        clearTimeout(force);
      }
    },
  };
}
