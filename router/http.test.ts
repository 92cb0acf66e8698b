import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import superjson from 'superjson';
import { createLogger } from '../shared/log.ts';
import type { RouterContext } from './context.ts';
import { serveTrpc } from './http.ts';
import { publicProcedure, router } from './trpc.ts';

const testRouter = router({
  echo: publicProcedure.input(z.object({ name: z.string().min(2), age: z.number().int() })).query(({ input }) => input),
  boom: publicProcedure.query(() => { throw new Error('db password=hunter2 leaked'); }),
});

function call(path: string, input: unknown, logged: string[] = []) {
  const url = `http://edge.test/trpc/${path}?input=${encodeURIComponent(JSON.stringify(superjson.serialize(input)))}`;
  const ctx: RouterContext = {
    requestId: 'r1', identity: null, ports: {}, host: 'edge',
    log: createLogger({ write: (l) => logged.push(l) }),
    health: async () => ({ status: 'ok', dependencies: {} }),
  };
  return serveTrpc(new Request(url), { router: testRouter, createContext: () => ctx });
}

describe('serveTrpc', () => {
  it('answers a valid call', async () => {
    const res = await call('echo', { name: 'Ann', age: 40 });
    expect(res.status).toBe(200);
    expect(superjson.deserialize((await res.json()).result.data)).toEqual({ name: 'Ann', age: 40 });
  });

  it('exposes zod issues per field on BAD_REQUEST', async () => {
    const res = await call('echo', { name: 'A', age: 1.5 });
    expect(res.status).toBe(400);
    const err = superjson.deserialize<{ data: { code: string; zodError: { fieldErrors: Record<string, string[]> } } }>((await res.json()).error);
    expect(err.data.code).toBe('BAD_REQUEST');
    expect(Object.keys(err.data.zodError.fieldErrors).sort()).toEqual(['age', 'name']);
  });

  it('hides unexpected errors from the caller and logs them with the request id, redacted', async () => {
    const logged: string[] = [];
    const res = await call('boom', undefined, logged);
    expect(res.status).toBe(500);
    const body = JSON.stringify(await res.json());
    expect(body).toContain('Internal server error');
    expect(body).not.toContain('hunter2');
    expect(body).not.toContain('stack');
    expect(logged).toHaveLength(1);
    expect(logged[0]).not.toContain('hunter2');
    expect(JSON.parse(logged[0]!)).toMatchObject({ level: 'error', msg: 'procedure failed', path: 'boom' });
  });
});
