/**
 * Embedded object store: s3rver 3.7.1 on a loopback port, objects kept as files under `dataDir`
 * (they survive restarts). s3rver runs in a child Node process with `--openssl-legacy-provider`,
 * which its paged listings need (see ./s3-child.ts).
 *
 * s3rver accepts any access key and does not verify SigV4 signatures: it stands in for S3's
 * storage semantics only, never for its authentication.
 */
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort } from '../free-port.ts';
import type { RunningService } from './types.ts';

export interface S3Service extends RunningService {
  readonly port: number;
  /** `http://127.0.0.1:<port>`; clients must use path-style addressing. */
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
}

const CHILD = fileURLToPath(new URL('./s3-child.ts', import.meta.url));
// An absolute loader URL keeps the child independent of the caller's working directory.
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Starts s3rver and resolves once it listens with every bucket in `buckets` (default `['reports']`) present. */
export async function startS3(opts: {
  dataDir: string;
  port?: number;
  buckets?: string[];
  accessKeyId?: string;
  secretAccessKey?: string;
}): Promise<S3Service> {
  await mkdir(opts.dataDir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const input = { directory: opts.dataDir, port, buckets: opts.buckets ?? ['reports'] };
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '--import', TSX, CHILD, JSON.stringify(input)], {
    // stdin stays open as a lifeline: the child exits when it closes (see ./s3-child.ts).
    stdio: ['pipe', 'pipe', 'pipe'],
  });

  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let output = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output = (output + chunk).slice(-8_000); });

  const listening = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    const onData = (chunk: string) => {
      stdout += chunk;
      const nl = stdout.indexOf('\n');
      if (nl < 0) return;
      const line = stdout.slice(0, nl);
      child.stdout.off('data', onData);
      // Keep draining stdout so a chatty child can never block on a full pipe.
      child.stdout.resume();
      try {
        const msg = JSON.parse(line) as { ready?: boolean; port?: number };
        if (msg.ready && typeof msg.port === 'number') return resolve(msg.port);
      } catch { /* reported below */ }
      reject(new Error(`s3rver printed an unexpected first line: ${line}\n${output}`));
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.once('error', reject);
    void exited.then(({ code, signal }) =>
      reject(new Error(`s3rver exited before listening on port ${port} (code ${code}, signal ${signal}):\n${stdout}${output}`)),
    );
  }).catch((err: unknown) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  });

  const endpoint = `http://127.0.0.1:${listening}`;
  return {
    name: 's3',
    url: endpoint,
    pid: child.pid,
    port: listening,
    endpoint,
    // s3rver's own defaults; any values are accepted since signatures are not checked.
    accessKeyId: opts.accessKeyId ?? 'S3RVER',
    secretAccessKey: opts.secretAccessKey ?? 'S3RVER',
    // s3rver only accepts continuation tokens minted for us-east-1.
    region: 'us-east-1',
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
