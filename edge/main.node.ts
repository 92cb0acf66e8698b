/**
 * Edge entry point for Node (`@hono/node-server`). On SIGINT/SIGTERM: `/ready` turns 503, the
 * listener closes, requests in flight finish within SHUTDOWN_GRACE_MS, then the process exits.
 */
import { serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { ConfigError, parseEdgeConfig } from '../shared/config.ts';
import { composeEdge } from './compose.ts';
import { nodeHeader } from './middleware/request-context.ts';
import { quietPinnedSdkWarning } from '../workers/node-warnings.ts';
import { drainHttpServer } from '../workers/shutdown.ts';

quietPinnedSdkWarning();

let config;
try {
  config = parseEdgeConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}
const { app, log, lifecycle } = composeEdge(config, {
  remoteAddress: (c) => getConnInfo(c).remote.address,
  closeConnectionsOnDrain: true,
  // A read through the Web Request would first copy every header into a validated Headers object.
  requestHeader: nodeHeader,
});
const server = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, (info) => {
  log.notice('edge listening', { url: `http://${config.host}:${info.port}`, runtime: 'node' });
});

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  const graceMs = config.ops.shutdownGraceMs;
  log.notice('edge stopping', { signal, graceMs });
  lifecycle.drain();
  const { forced } = await drainHttpServer(server, Date.now() + graceMs);
  if (forced) log.warn('requests still running at the end of the grace period were cut', { graceMs });
  log.notice('edge stopped', { signal });
  process.exit(0);
};
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
