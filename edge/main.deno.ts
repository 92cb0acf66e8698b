/** Edge entry point for Deno (`Deno.serve`). `deno task edge` or `deno run -A edge/main.deno.ts`. */
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
const { app, log } = composeEdge(config, { remoteAddress: (c) => getConnInfo(c).remote.address });
const ac = new AbortController();
const server = Deno.serve(
  { hostname: config.host, port: config.port, signal: ac.signal, onListen: ({ port }) => log.notice('edge listening', { url: `http://${config.host}:${port}`, runtime: 'deno' }) },
  app.fetch,
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  Deno.addSignalListener(signal, () => {
    log.notice('edge stopping', { signal });
    ac.abort();
  });
}
await server.finished;
