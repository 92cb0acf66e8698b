/**
 * Runs the Upstash-REST gateway as its own process:
 *   REDIS_URL=redis://127.0.0.1:6379 GATEWAY_TOKEN=… [GATEWAY_HOST=127.0.0.1] [GATEWAY_PORT=8079] \
 *     node --import tsx infra/gateway/main.ts
 * Logs JSON lines; stops cleanly on SIGINT/SIGTERM.
 */
import { createLogger } from '../../shared/log.ts';
import { startUpstashGateway } from './upstash-gateway.ts';

const logger = createLogger({ base: { service: 'upstash-gateway' } });

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required but not set`);
  return value;
}

async function main(): Promise<void> {
  const redisUrl = required('REDIS_URL');
  const token = required('GATEWAY_TOKEN');
  const rawPort = process.env.GATEWAY_PORT || '8079';
  const port = Number(rawPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`GATEWAY_PORT must be a port number, got "${rawPort}"`);

  const gateway = await startUpstashGateway({
    redisUrl,
    token,
    host: process.env.GATEWAY_HOST || '127.0.0.1',
    port,
    log: (rec) => {
      const { level = 'info', msg = 'gateway', ...fields } = rec as { level?: 'info' | 'warn' | 'error'; msg?: string };
      logger[level](msg, fields);
    },
  });
  logger.info('upstash gateway listening', { url: gateway.url });

  const shutdown = (signal: string) => {
    logger.info('stopping', { signal });
    gateway.stop().then(() => process.exit(0), (err: unknown) => {
      logger.error('stop failed', { error: err });
      process.exit(1);
    });
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  logger.error('upstash gateway failed to start', { error: err });
  process.exitCode = 1;
});
