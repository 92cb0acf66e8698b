/**
 * KV contract against the embedded stack: redis-server → the project's Upstash-REST gateway →
 * the `@upstash/redis` adapter, plus the gateway's own protocol and failure behaviour.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { startRedis } from '../../infra/dev/services/redis.ts';
import type { RunningService } from '../../infra/dev/services/types.ts';
import { startUpstashGateway } from '../../infra/gateway/upstash-gateway.ts';
import { kvContract } from './kv-contract.ts';

type Service = RunningService & { port: number };
let dir: string;
let redis: Service;
let gateway: Service;
const token = randomBytes(24).toString('base64url');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kv-test-'));
  redis = await startRedis({ dataDir: join(dir, 'redis') });
  gateway = await startUpstashGateway({ redisUrl: redis.url, token });
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

kvContract('upstash adapter → gateway → redis-server', async () => ({
  kv: createUpstashKv({ url: gateway.url, token }),
  teardown: async () => {},
}));

/** Raw protocol call; returns the status and the parsed JSON body. */
async function call(path: string, body: string, headers: Record<string, string> = { authorization: `Bearer ${token}` }) {
  const res = await fetch(gateway.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, json: (await res.json()) as any };
}
const ok = (body: unknown) => call('/', JSON.stringify(body));

describe('Upstash gateway', () => {
  it('refuses a wrong or missing bearer token with 401', async () => {
    const attempts: Record<string, string>[] = [{ authorization: 'Bearer wrong' }, { authorization: `Bearer ${token}x` }, { authorization: token }, {}];
    for (const headers of attempts) {
      const res = await call('/', '["PING"]', headers);
      expect(res.status).toBe(401);
      expect(res.json.error).toMatch(/unauthorized/i);
    }
    const client = createUpstashKv({ url: gateway.url, token: 'not-the-token' });
    await expect(client.ping()).rejects.toThrow(/unauthorized/i);
  });

  it('answers malformed bodies with 400 and keeps serving', async () => {
    const bad = ['{not json', '{"cmd":"GET"}', '"GET"', '[]', '[["GET","k"]]', '["SET","k",{"a":1}]', '["SET","k",null]', '[1,"k"]'];
    for (const body of bad) {
      const res = await call('/', body);
      expect(res.status, body).toBe(400);
      expect(typeof res.json.error, body).toBe('string');
    }
    for (const body of ['[]', '["GET","k"]', '[["GET"], {"x":1}]', '{}']) {
      expect((await call('/pipeline', body)).status, body).toBe(400);
      expect((await call('/multi-exec', body)).status, body).toBe(400);
    }
    expect(await ok(['PING'])).toEqual({ status: 200, json: { result: 'PONG' } });
  });

  it('accepts numbers and booleans as arguments, as the client serialises them', async () => {
    const k = `gw:${randomUUID()}`;
    expect(await ok(['SET', k, 12.5, 'EX', 60])).toEqual({ status: 200, json: { result: 'OK' } });
    expect(await ok(['GET', k])).toEqual({ status: 200, json: { result: '12.5' } });
    expect(await ok(['SET', k, true])).toMatchObject({ status: 200 });
    expect((await ok(['GET', k])).json.result).toBe('true');
  });

  it('returns Redis errors as {error} with status 400; the client throws them', async () => {
    const k = `gw:${randomUUID()}`;
    await ok(['SET', k, 'abc']);
    expect(await ok(['INCR', k])).toEqual({ status: 400, json: { error: 'ERR value is not an integer or out of range' } });
    expect((await ok(['NOSUCHCOMMAND'])).json.error).toMatch(/^ERR unknown command/);
    const kv = createUpstashKv({ url: gateway.url, token });
    await expect(kv.redis.incr(k)).rejects.toThrow(/ERR value is not an integer/);
  });

  it('discards a whole transaction when a queued command is rejected', async () => {
    const k = `gw:${randomUUID()}`;
    const res = await call('/multi-exec', JSON.stringify([['SET', k, 'written'], ['INCR']]));
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/EXECABORT/);
    expect((await ok(['EXISTS', k])).json.result).toBe(0);
    // The same commands as a pipeline are not atomic: the SET lands.
    const piped = await call('/pipeline', JSON.stringify([['SET', k, 'written'], ['INCR']]));
    expect(piped.status).toBe(200);
    expect(piped.json[0]).toEqual({ result: 'OK' });
    expect(piped.json[1].error).toMatch(/wrong number of arguments/);
    expect((await ok(['GET', k])).json.result).toBe('written');
  });

  it('encodes strings, also nested in arrays, as base64 when asked', async () => {
    const k = `gw:${randomUUID()}`;
    const direct = new IORedis(redis.url);
    try {
      await direct.set(k, Buffer.from([0xff, 0xfe, 0x00, 0x41]));
    } finally {
      direct.disconnect();
    }
    const headers = { authorization: `Bearer ${token}`, 'upstash-encoding': 'base64' };
    expect((await call('/', JSON.stringify(['GET', k]), headers)).json).toEqual({ result: '//4AQQ==' });
    const list = `gw:${randomUUID()}`;
    await ok(['RPUSH', list, 'ü', 'plain']);
    const nested = await call('/', JSON.stringify(['LRANGE', list, 0, -1]), headers);
    expect(nested.json.result).toEqual([Buffer.from('ü').toString('base64'), Buffer.from('plain').toString('base64')]);
    expect((await call('/', JSON.stringify(['LLEN', list]), headers)).json.result).toBe(2);
    expect((await ok(['LRANGE', list, 0, -1])).json.result).toEqual(['ü', 'plain']);
  });

  it('refuses commands that would change or block the shared connection', async () => {
    for (const cmd of [['SUBSCRIBE', 'ch'], ['select', '1'], ['BLPOP', 'l', '0'], ['MULTI'], ['XREAD', 'BLOCK', '0', 'STREAMS', 's', '$']]) {
      const res = await ok(cmd);
      expect(res.status, cmd[0]).toBe(400);
      expect(res.json.error).toMatch(/not supported/);
    }
    expect((await ok(['PING'])).json.result).toBe('PONG');
  });

  it('limits the body size with 413 and answers unknown paths with 404', async () => {
    const huge = JSON.stringify(['SET', 'k', 'x'.repeat(11 * 1024 * 1024)]);
    expect((await call('/', huge)).status).toBe(413);
    expect((await call('/nope', '["PING"]')).status).toBe(404);
    expect((await ok(['PING'])).json.result).toBe('PONG');
  });
});

describe('Upstash gateway while Redis restarts', () => {
  it('answers 503 while Redis is down, then serves the persisted data again', async () => {
    const dataDir = join(dir, 'redis-restart');
    let server = await startRedis({ dataDir });
    const gw = await startUpstashGateway({ redisUrl: server.url, token });
    const kv = createUpstashKv({ url: gw.url, token });
    try {
      expect(await kv.set('durable', 'kept')).toBe(true);
      await server.stop();
      const down = await fetch(gw.url, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '["GET","durable"]' });
      expect(down.status).toBe(503);
      expect(((await down.json()) as { error: string }).error).toBeTruthy();
      server = await startRedis({ dataDir, port: server.port });
      const deadline = Date.now() + 20_000;
      let value: string | null | undefined;
      while (value !== 'kept' && Date.now() < deadline) {
        value = await kv.get('durable').catch(() => undefined);
        if (value !== 'kept') await new Promise((r) => setTimeout(r, 100));
      }
      expect(value).toBe('kept');
    } finally {
      await gw.stop();
      await server.stop();
    }
  });
});

describe('redis-server service', () => {
  it('persists with an append-only file in its data directory', () => {
    expect(existsSync(join(dir, 'redis', 'appendonlydir'))).toBe(true);
  });

  it('rejects with the server\'s own output when it cannot start', async () => {
    await expect(startRedis({ dataDir: join(dir, 'redis-clash'), port: redis.port })).rejects.toThrow(/Address already in use/);
  });

  it('stops on SIGTERM and reports the exit', async () => {
    const other = await startRedis({ dataDir: join(dir, 'redis-other') });
    const direct = new IORedis(other.url);
    try {
      expect(await direct.ping()).toBe('PONG');
    } finally {
      direct.disconnect();
    }
    await other.stop();
    expect(await other.exited).toEqual({ code: 0, signal: null });
  });
});
