/**
 * The same sign-in with the edge running under Deno (edge/main.deno.ts, configured only through
 * its environment) against the real provider, LDAP, KV and a worker: login → password → TOTP →
 * callback → /auth/me → a forwarded worker call → logout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/dev/free-port.ts';
import { CookieClient } from '../support/cookie-client.ts';
import { AUDIENCE, CLIENT_ID, startAuthStack, type AuthStack } from '../support/auth-stack.ts';

const ROOT = join(import.meta.dirname, '../..');
let stack: AuthStack;
let deno: ChildProcess;
let denoUrl: string;
const output: string[] = [];

beforeAll(async () => {
  const port = await freePort();
  denoUrl = `http://127.0.0.1:${port}`;
  stack = await startAuthStack({ extraEdgeUrls: [denoUrl] });
  const k = stack.authConfig.sessionKeys[0]!;
  deno = spawn(join(ROOT, 'node_modules/.bin/deno'), ['run', '--allow-net', '--allow-env', '--allow-read', '--allow-sys', 'edge/main.deno.ts'], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1',
      BIONIC_ENV: 'test', LOG_LEVEL: 'warn', EDGE_HOST: '127.0.0.1', EDGE_PORT: String(port), PUBLIC_URL: denoUrl,
      WORKER_URL: stack.workerUrl, UPSTASH_REDIS_REST_URL: stack.kvUrl, UPSTASH_REDIS_REST_TOKEN: stack.kvToken,
      S3_ENDPOINT: 'http://127.0.0.1:9', S3_ACCESS_KEY_ID: 'unused', S3_SECRET_ACCESS_KEY: 'unused', S3_FORCE_PATH_STYLE: 'true',
      OIDC_ISSUER: stack.idp.issuer, OIDC_CLIENT_ID: CLIENT_ID, OIDC_CLIENT_SECRET: stack.clientSecret, OIDC_AUDIENCE: AUDIENCE,
      SESSION_KEYS: `${k.kid}:${k.secret}`,
    },
  });
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line) output.push(line);
        if (line.includes('"edge listening"')) resolve();
      }
    };
    deno.stdout!.on('data', onData);
    deno.stderr!.on('data', onData);
    deno.once('exit', (code) => reject(new Error(`deno edge exited (${code}):\n${output.join('\n')}`)));
  });
}, 180_000);

afterAll(async () => {
  if (deno && deno.exitCode === null) {
    const exited = new Promise((r) => deno.once('exit', r));
    deno.kill('SIGTERM');
    await exited;
  }
  await stack?.stop();
}, 60_000);

describe('sign-in with the edge on Deno', () => {
  it('logs in, reaches a worker with the session, and logs out', async () => {
    const client = new CookieClient();
    const start = await client.follow(`${denoUrl}/auth/login?returnTo=/auth/me`);
    const pwd = await client.submit(start.final, '/password', { username: 'user2', password: 'bionic-demo' });
    const done = await client.submit(pwd.final, '/otp', { code: await stack.totp('user2') });
    expect(done.final.url).toBe(`${denoUrl}/auth/me`);
    expect(JSON.parse(done.final.body)).toMatchObject({ username: 'user2', roles: ['prosthesis_user'] });
    const cookie = client.get('__Host-session')!;
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });

    const whoami = await client.request(`${denoUrl}/trpc/worker.whoami`);
    expect(whoami.status).toBe(200);
    expect(whoami.body).toContain('"verifiedBy":"worker"');
    expect(whoami.body).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);

    const csrfless = await client.request(`${denoUrl}/auth/logout`, { method: 'POST' });
    expect(csrfless.status).toBe(403);
    const out = await client.request(`${denoUrl}/auth/logout`, { method: 'POST', headers: { origin: denoUrl, 'x-bionic-csrf': '1' } });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toContain('/protocol/openid-connect/logout?');
    expect((await fetch(`${denoUrl}/auth/me`, { headers: { cookie: `__Host-session=${cookie.value}` } })).status).toBe(401);
  });
});
