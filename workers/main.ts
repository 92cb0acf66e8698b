/**
 * Worker entry point (Node): parse configuration once, start, and on SIGINT/SIGTERM stop
 * gracefully — readiness 503, no new connections, in-flight requests and bus batches finished —
 * within SHUTDOWN_GRACE_MS, after which the process exits regardless.
 */
import { ConfigError, parseWorkerConfig, type WorkerConfig } from '../shared/config.ts';
import { startWorker } from './worker.ts';
import { quietPinnedSdkWarning } from './node-warnings.ts';

quietPinnedSdkWarning();

let config: WorkerConfig;
try {
  config = parseWorkerConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}
const worker = await startWorker(config);
let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  const graceMs = config.ops.shutdownGraceMs;
  worker.log.notice('worker stopping', { signal, graceMs });
  // Closing pools after the drain takes a moment more; past that, something hangs: exit anyway.
  const force = setTimeout(() => { worker.log.warn('shutdown did not finish in time, forcing exit', { graceMs }); process.exit(1); }, graceMs + 5_000);
  force.unref();
  try {
    await worker.stop(graceMs);
    worker.log.notice('worker stopped', { signal });
    process.exit(0);
  } catch (err) {
    worker.log.error('shutdown failed', { err });
    process.exit(1);
  }
};
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
