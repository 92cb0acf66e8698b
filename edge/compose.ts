/**
 * Composition root shared by the edge entry points: configuration in, app out.
 * Runtime-specific entry points only read their environment, say how to find the caller's
 * address on their runtime, and start a server.
 */
import type { Context } from 'hono';
import type { EdgeConfig } from '../shared/config.ts';
import { createLogger } from '../shared/log.ts';
import { createEdgeApp } from './app.ts';
import { createUpstashKv } from './adapters/kv-upstash.ts';
import { createLifecycle, type Lifecycle } from './middleware/lifecycle.ts';
import type { HeaderReader } from './middleware/request-context.ts';
import { createS3ObjectStore } from './adapters/object-store-s3.ts';
import { createEdgeRegions } from './regions.ts';

export interface EdgeRuntime {
  /** The socket's remote address on this runtime (Node: @hono/node-server/conninfo, Deno: hono/deno). */
  remoteAddress?: (c: Context) => string | undefined;
  /** Whether answers while draining ask keep-alive clients to leave (Node; Deno.serve does it itself). */
  closeConnectionsOnDrain?: boolean;
  /** Reads a request header without the Web Request's copy of them all (Node: the parsed `IncomingMessage` headers). */
  requestHeader?: HeaderReader;
}

export function composeEdge(config: EdgeConfig, runtime: EdgeRuntime = {}) {
  const log = createLogger({ level: config.logLevel, base: { service: 'edge' } });
  if (!config.auth) log.warn('sign-in is disabled: OIDC_ISSUER is not set, every caller is anonymous');
  const header = config.clientIpHeader;
  const lifecycle: Lifecycle = createLifecycle({ closeConnections: runtime.closeConnectionsOnDrain });
  const objectStore = createS3ObjectStore(config.objectStore);
  const app = createEdgeApp({
    kv: createUpstashKv(config.kv),
    objectStore,
    regions: createEdgeRegions(config, objectStore),
    workerUrl: config.workerUrl,
    log,
    auth: config.auth,
    publicUrl: config.publicUrl,
    rateLimits: config.rateLimits,
    reports: config.reports,
    telemetry: config.telemetry,
    metricsToken: config.ops.metricsToken,
    lifecycle,
    requestHeader: runtime.requestHeader,
    // Behind a proxy the socket is the proxy: then only the header it sets names the client.
    clientIp: header ? (c) => c.req.header(header)?.split(',')[0]?.trim() : runtime.remoteAddress,
  });
  return { app, log, lifecycle };
}
