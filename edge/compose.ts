/**
 * Composition root shared by the edge entry points: configuration in, app out.
 * Runtime-specific entry points only read their environment and start a server.
 */
import type { EdgeConfig } from '../shared/config.ts';
import { createLogger } from '../shared/log.ts';
import { createEdgeApp } from './app.ts';
import { createUpstashKv } from './adapters/kv-upstash.ts';
import { createS3ObjectStore } from './adapters/object-store-s3.ts';

export function composeEdge(config: EdgeConfig) {
  const log = createLogger({ level: config.logLevel, base: { service: 'edge' } });
  const app = createEdgeApp({
    kv: createUpstashKv(config.kv),
    objectStore: createS3ObjectStore(config.objectStore),
    workerUrl: config.workerUrl,
    log,
  });
  return { app, log };
}
