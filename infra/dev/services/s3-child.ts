/**
 * Child-process entry for s3rver, started by `startS3` (./s3.ts). It runs apart from the launcher
 * because s3rver's paged listings encrypt continuation tokens with DES, which Node 20's OpenSSL 3
 * only offers under `--openssl-legacy-provider` — a flag we do not want on the whole dev stack.
 *
 * Input: one JSON argument `{ directory, port, buckets }`. Output: one JSON line on stdout,
 * `{"ready":true,"port":N}`, once the server listens. SIGTERM/SIGINT, or the parent
 * closing stdin, close the server and exit 0.
 */
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';

interface S3rverOptions {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  vhostBuckets: boolean;
  configureBuckets: { name: string }[];
}
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}

// s3rver ships CommonJS without type declarations; this is the slice of its API we use.
const S3rver = createRequire(import.meta.url)('s3rver') as new (opts: S3rverOptions) => S3rverInstance;

const input = JSON.parse(process.argv[2] ?? '{}') as { directory?: string; port?: number; buckets?: string[] };
if (!input.directory || input.port === undefined) {
  process.stderr.write('usage: s3-child.ts \'{"directory":"…","port":N,"buckets":["…"]}\'\n');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: input.port,
  directory: input.directory,
  silent: true,
  // Clients use path-style URLs; never guess a bucket from the Host header.
  vhostBuckets: false,
  configureBuckets: (input.buckets ?? []).map((name) => ({ name })),
});

const address = await server.run();
process.stdout.write(JSON.stringify({ ready: true, port: address.port }) + '\n');

let closing = false;
const shutdown = () => {
  if (closing) return;
  closing = true;
  server.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`s3rver close failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// The parent holds our stdin open; when it dies without stopping us, do not linger on the port.
process.stdin.on('end', shutdown).on('error', shutdown).resume();
