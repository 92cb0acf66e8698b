/**
 * The edge under Deno (edge/main.deno.ts) as a child process, configured only through its
 * environment against an auth stack's provider and KV — for tests that need the Deno runtime.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { AUDIENCE, CLIENT_ID, type AuthStack } from './auth-stack.ts';

const ROOT = join(import.meta.dirname, '../..');

export interface DenoEdge {
  proc: ChildProcess;
  /** Everything it printed so far, line by line. */
  output: string[];
  /** SIGTERM, then resolves when it has exited. */
  stop(): Promise<void>;
}

/** Starts it on `port` and resolves once it logs "edge listening"; rejects if it exits first. */
export async function startDenoEdge(o: { auth: AuthStack; port: number; publicUrl: string; workerUrl: string }): Promise<DenoEdge> {
  const k = o.auth.authConfig.sessionKeys[0]!;
  const proc = spawn(join(ROOT, 'node_modules/.bin/deno'), ['run', '--allow-net', '--allow-env', '--allow-read', '--allow-sys', 'edge/main.deno.ts'], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1',
      BIONIC_ENV: 'test', LOG_LEVEL: 'warn', EDGE_HOST: '127.0.0.1', EDGE_PORT: String(o.port), PUBLIC_URL: o.publicUrl,
      WORKER_URL: o.workerUrl, UPSTASH_REDIS_REST_URL: o.auth.kvUrl, UPSTASH_REDIS_REST_TOKEN: o.auth.kvToken,
      S3_ENDPOINT: 'http://127.0.0.1:9', S3_ACCESS_KEY_ID: 'unused', S3_SECRET_ACCESS_KEY: 'unused', S3_FORCE_PATH_STYLE: 'true',
      OIDC_ISSUER: o.auth.idp.issuer, OIDC_CLIENT_ID: CLIENT_ID, OIDC_CLIENT_SECRET: o.auth.clientSecret, OIDC_AUDIENCE: AUDIENCE,
      SESSION_KEYS: `${k.kid}:${k.secret}`,
    },
  });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line) output.push(line);
        if (line.includes('"edge listening"')) resolve();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`deno edge exited (${code}):\n${output.join('\n')}`)));
  });
  return {
    proc, output,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}
