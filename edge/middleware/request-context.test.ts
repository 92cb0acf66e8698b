import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono, type MiddlewareHandler } from 'hono';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/log.ts';
import { addAnswerHeaders, nodeHeader, requestContext, requestHeader, takeAnswerHeaders, type HeaderReader } from './request-context.ts';

const http: { route: string; status: number }[] = [];
const metrics = { http: (o: { route: string; status: number }) => { http.push(o); } };

function app(header?: HeaderReader, lifecycle?: { closing: boolean }) {
  const a = new Hono();
  a.use(requestContext({ log: createLogger({ level: 'silent' }), metrics, header, lifecycle }));
  const limit: MiddlewareHandler = async (c, next) => { addAnswerHeaders(c, { 'x-ratelimit-remaining': '9' }); await next(); };
  a.use(limit);
  a.get('/json', (c) => c.json({ ok: true }));
  a.get('/raw', () => new Response('raw', { headers: { 'content-type': 'text/plain' } }));
  a.get('/taken', (c) => new Response('taken', { headers: { ...takeAnswerHeaders(c), 'x-own': '1' } }));
  a.get('/immutable', () => Response.redirect('http://127.0.0.1/elsewhere', 302));
  a.get('/echo', (c) => c.json({ cookie: requestHeader(c, 'cookie') ?? null, etag: requestHeader(c, 'if-none-match') ?? null }));
  return a;
}

describe('request context', () => {
  it('puts the request id and the pending headers on every kind of answer, once', async () => {
    const a = app();
    for (const path of ['/json', '/raw', '/taken', '/immutable']) {
      const res = await a.request(path, { headers: { 'x-request-id': 'abc-123' } });
      expect(res.headers.get('x-request-id'), path).toBe('abc-123');
      expect(res.headers.get('x-ratelimit-remaining'), path).toBe('9');
    }
    const taken = await a.request('/taken');
    expect(taken.headers.get('x-own')).toBe('1');
    expect(taken.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect((await a.request('/immutable')).status).toBe(302);
  });

  it('asks keep-alive clients to leave while the host drains', async () => {
    const lifecycle = { closing: false };
    const a = app(undefined, lifecycle);
    expect((await a.request('/json')).headers.get('connection')).toBeNull();
    lifecycle.closing = true;
    for (const path of ['/json', '/taken', '/immutable']) expect((await a.request(path)).headers.get('connection'), path).toBe('close');
  });

  it('replaces a request id that is too long or not plain', async () => {
    for (const bad of ['a b', 'x'.repeat(256), '<script>']) {
      const res = await app().request('/json', { headers: { 'x-request-id': bad } });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('records the route template and status of each answer', async () => {
    http.length = 0;
    await app().request('/json');
    await app().request('/nowhere');
    expect(http).toEqual([expect.objectContaining({ route: '/json', status: 200 }), expect.objectContaining({ route: '(unmatched)', status: 404 })]);
  });

  it('reads headers through the runtime reader: Node\'s parsed headers on @hono/node-server, the same values as the Web Request', async () => {
    for (const header of [nodeHeader, undefined]) {
      const server = serve({ fetch: app(header).fetch, hostname: '127.0.0.1', port: 0 }) as Server;
      await new Promise((r) => server.once('listening', r));
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const res = await fetch(`${url}/echo`, { headers: { cookie: 'a=1; __Host-session=xyz', 'if-none-match': '"e1"', 'x-request-id': 'node-1' } });
        expect(await res.json()).toEqual({ cookie: 'a=1; __Host-session=xyz', etag: '"e1"' });
        expect(res.headers.get('x-request-id')).toBe('node-1');
        expect(res.headers.get('x-ratelimit-remaining')).toBe('9');
        expect(await (await fetch(`${url}/echo`)).json()).toEqual({ cookie: null, etag: null });
      } finally {
        server.close();
        server.closeAllConnections();
      }
    }
  });
});
