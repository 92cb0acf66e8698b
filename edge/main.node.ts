/** Edge entry point for Node (`@hono/node-server`). */
import { serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { ConfigError, parseEdgeConfig } from '../shared/config.ts';
import { composeEdge } from './compose.ts';
import { quietPinnedSdkWarning } from '../workers/node-warnings.ts';

quietPinnedSdkWarning();

let config;
try {
  config = parseEdgeConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}
const { app, log } = composeEdge(config, { remoteAddress: (c) => getConnInfo(c).remote.address });
const server = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, (info) => {
  log.notice('edge listening', { url: `http://${config.host}:${info.port}`, runtime: 'node' });
});

const shutdown = (signal: string) => {
  log.notice('edge stopping', { signal });
  server.close(() => process.exit(0));
  // In-flight requests get a grace period, then we stop regardless.
  setTimeout(() => process.exit(0), 5000).unref();
};
process.once('SIGINT', () => shutdown('SIGINT'));
process.once('SIGTERM', () => shutdown('SIGTERM'));
