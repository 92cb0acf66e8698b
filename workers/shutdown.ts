/**
 * Graceful stop of a Node HTTP server (@hono/node-server), shared by the worker and the Node edge:
 *
 * 1. stop listening — new connections are refused at once;
 * 2. let requests already received finish (their answers carry `Connection: close` from the
 *    app's lifecycle middleware, so keep-alive clients leave); idle keep-alive connections are
 *    closed only after a few event-loop turns, so a request already in the socket is read first;
 * 3. at `deadline`, close whatever is left.
 *
 * Resolves when every connection is closed; `forced` says whether the deadline cut any.
 */
import { Server as NetServer } from 'node:net';
import type { Server } from 'node:http';
import type { ServerType } from '@hono/node-server';

const IDLE_SWEEP_MS = 50;

export async function drainHttpServer(server: ServerType, deadline: number): Promise<{ forced: boolean }> {
  const http = server as Server;
  // http.Server#close also drops idle keep-alive sockets immediately; a request that reached such
  // a socket a moment ago but was not read yet would be cut. Plain net close only stops listening.
  const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(http, () => resolve()));
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  const sweep = setInterval(() => http.closeIdleConnections(), IDLE_SWEEP_MS);
  http.closeIdleConnections();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const forced = await Promise.race([
    closed.then(() => false),
    new Promise<boolean>((r) => { timer = setTimeout(() => r(true), Math.max(0, deadline - Date.now())); }),
  ]);
  clearInterval(sweep);
  clearTimeout(timer);
  if (forced) {
    http.closeAllConnections();
    await closed;
  }
  return { forced };
}
