/**
 * Edge entry point for Deno (`Deno.serve`). `deno task edge` or `deno run -A edge/main.deno.ts`.
 * On SIGINT/SIGTERM: `/ready` turns 503, the server stops accepting and lets requests in flight
 * finish (`server.shutdown()`), and after SHUTDOWN_GRACE_MS the process exits regardless.
 */
import { getConnInfo } from 'hono/deno';
import { ConfigError, parseEdgeConfig } from '../shared/config.ts';
import { composeEdge } from './compose.ts';

let config;
try {
  config = parseEdgeConfig(Deno.env.toObject());
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  Deno.exit(2);
}
const { app, log, lifecycle } = composeEdge(config, { remoteAddress: (c) => getConnInfo(c).remote.address });
const server = Deno.serve(
  { hostname: config.host, port: config.port, onListen: ({ port }) => log.notice('edge listening', { url: `http://${config.host}:${port}`, runtime: 'deno' }) },
  app.fetch,
);
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  Deno.addSignalListener(signal, () => {
    if (stopping) return;
    stopping = true;
    const graceMs = config.ops.shutdownGraceMs;
    log.notice('edge stopping', { signal, graceMs });
    lifecycle.drain();
    const force = setTimeout(() => {
      log.warn('requests still running at the end of the grace period were cut', { graceMs });
      Deno.exit(0);
    }, graceMs);
    void server.shutdown().then(() => {
      clearTimeout(force);
      log.notice('edge stopped', { signal });
      Deno.exit(0);
    });
  });
}
await server.finished;
