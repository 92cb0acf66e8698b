/**
 * An HTTP pass-through proxy in front of a real service whose behaviour a test can switch:
 * `pass` forwards everything, `down` drops every connection (the service looks unreachable),
 * `cut-writes` forwards reads but cuts PUT/POST bodies half-way and drops the client (a failure in
 * the middle of an upload). It counts requests by method, so tests can see round trips.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { freePort } from '../../infra/dev/free-port.ts';

export type ProxyMode = 'pass' | 'down' | 'cut-writes';

export interface FlakyProxy {
  url: string;
  mode: ProxyMode;
  /** Requests forwarded (or refused) per method since the last reset. */
  counts: Record<string, number>;
  resetCounts(): void;
  stop(): Promise<void>;
}

export async function startFlakyProxy(target: string): Promise<FlakyProxy> {
  const upstream = new URL(target);
  const sockets = new Set<Socket>();
  const state: FlakyProxy = {
    url: '', mode: 'pass', counts: {},
    resetCounts() { state.counts = {}; },
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((req: IncomingMessage, res) => {
    state.counts[req.method ?? '?'] = (state.counts[req.method ?? '?'] ?? 0) + 1;
    if (state.mode === 'down') { req.socket.destroy(); return; }
    const cut = state.mode === 'cut-writes' && (req.method === 'PUT' || req.method === 'POST');
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on('error', () => req.socket.destroy());
    if (!cut) { req.pipe(out); return; }
    const half = Math.floor(Number(req.headers['content-length'] ?? 0) / 2);
    let sent = 0;
    req.on('data', (chunk: Buffer) => {
      if (sent >= half) return;
      const part = chunk.subarray(0, half - sent);
      sent += part.length;
      out.write(part);
      if (sent >= half) {
        // The upload dies mid-body on both sides, as when a connection breaks.
        out.destroy();
        req.socket.destroy();
      }
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${port}`;
  return state;
}
