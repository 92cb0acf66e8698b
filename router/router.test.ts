import { describe, expect, it } from 'vitest';
import { TRPCError } from '@trpc/server';
import { createLogger } from '../shared/log.ts';
import type { RouterContext } from './context.ts';
import { isWorkerPath, WORKER_DOMAINS } from './paths.ts';
import { appRouter, edgeRouter, workerRouter } from './root.ts';
import { createCallerFactory } from './trpc.ts';

const ctx = (over: Partial<RouterContext> = {}): RouterContext => ({
  requestId: 'test', identity: null, log: createLogger({ level: 'silent' }), ports: {}, host: 'edge',
  health: async () => ({ status: 'ok', dependencies: { kv: { ok: true, latencyMs: 1 } } }),
  ...over,
});
const caller = createCallerFactory(appRouter);

describe('router', () => {
  it('health.check reports the host and its dependencies', async () => {
    await expect(caller(ctx()).health.check()).resolves.toEqual({ status: 'ok', host: 'edge', dependencies: { kv: { ok: true, latencyMs: 1 } } });
  });

  it('authed procedures refuse a call without an identity', async () => {
    const err = await caller(ctx()).me.get().catch((e) => e);
    expect(err).toBeInstanceOf(TRPCError);
    expect(err.code).toBe('UNAUTHORIZED');
  });

  it('authed procedures serve a verified identity, without tokens', async () => {
    const me = await caller(ctx({ identity: { userId: 'u1', username: 'user1', roles: ['prosthesis_user'] } })).me.get();
    expect(me).toEqual({ userId: 'u1', username: 'user1', roles: ['prosthesis_user'], region: null });
  });

  it('edge and worker routers split the domains exactly as paths.ts says', () => {
    const edgeDomains = Object.keys(edgeRouter._def.record);
    const workerDomains = Object.keys(workerRouter._def.record);
    expect(edgeDomains.filter((d) => isWorkerPath(`${d}.x`))).toEqual([]);
    expect(workerDomains.every((d) => (WORKER_DOMAINS as readonly string[]).includes(d))).toBe(true);
    expect(isWorkerPath('worker.health')).toBe(true);
    expect(isWorkerPath('health.check')).toBe(false);
    expect(isWorkerPath('ordersx.create')).toBe(false);
  });
});
