/**
 * CDC in a child process, for tests/e2e/cdc-crash.test.ts (which kills it with SIGKILL) and for
 * anything else that needs CDC in another process. Prints one JSON line per CDC event on stdout;
 * answers `status` on stdin with `{"event":"status",…}`; stops gracefully on SIGTERM. Each event line
 * carries `copies`, the batches the bus has stored with COPY so far.
 *
 * Usage: node --import tsx tests/support/cdc-child.ts <crmUrl> <platformUrl> <chdbPath> [optionsJson]
 * (optionsJson: startCdc's options, plus `bus` for openBus's)
 */
import { createInterface } from 'node:readline';
import { createLogger } from '../../shared/log.ts';
import { startCdc } from '../../workers/cdc/index.ts';
import { openBus, openOlap } from './cdc-stack.ts';

const [crmUrl, platformUrl, chdbPath, optionsJson] = process.argv.slice(2);
if (!crmUrl || !platformUrl || !chdbPath) {
  console.error('usage: cdc-child <crmUrl> <platformUrl> <chdbPath> [optionsJson]');
  process.exit(2);
}
const say = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + '\n');
const log = createLogger({ level: 'warn', base: { child: process.pid }, write: (line) => process.stderr.write(line + '\n') });

const { bus: busOptions, ...options } = (optionsJson ? JSON.parse(optionsJson) : {}) as { bus?: Parameters<typeof openBus>[1] };
const olap = await openOlap(chdbPath);
const bus = await openBus(platformUrl, busOptions);
const cdc = await startCdc({
  crmUrl, olap, bus, log, options,
  onEvent: (e) => say({ event: 'cdc', ...e, copies: bus.copyStats.published }),
});
say({ event: 'ready' });

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'status') cdc.status().then((s) => say({ event: 'status', ...s }), (err) => say({ event: 'status-error', message: String(err) }));
});

process.once('SIGTERM', async () => {
  await cdc.stop();
  await bus.close();
  await olap.close();
  say({ event: 'stopped' });
  process.exit(0);
});
