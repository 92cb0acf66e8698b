/** Worker entry point (Node): parse configuration once, start, stop on SIGINT/SIGTERM. */
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
  worker.log.notice('worker stopping', { signal });
  const force = setTimeout(() => { worker.log.warn('grace period over, forcing exit'); process.exit(1); }, 10_000);
  force.unref();
  await worker.stop();
  process.exit(0);
};
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
