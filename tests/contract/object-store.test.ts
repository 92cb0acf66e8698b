/**
 * The ObjectStore contract against the S3 adapter on a real s3rver (child process, temp data dir),
 * plus what only a real server can show: paging requests, restarts, and a dead endpoint.
 */
import { createServer, request, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3ObjectStore, ObjectStoreError, type S3ObjectStoreOptions } from '../../edge/adapters/object-store-s3.ts';
import type { ObjectStoreConfig } from '../../shared/config.ts';
import { freePort } from '../../infra/dev/free-port.ts';
import { startS3, type S3Service } from '../../infra/dev/services/s3.ts';
import { objectStoreContract } from './object-store-contract.ts';

const HOOK_TIMEOUT = 60_000;
const PAGE_SIZE = 10;

const configFor = (s3: Pick<S3Service, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'>, endpoint = s3.endpoint): ObjectStoreConfig => ({
  endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey,
  bucket: 'reports', forcePathStyle: true,
});
const storeOn = (s3: S3Service, opts?: S3ObjectStoreOptions) => createS3ObjectStore(configFor(s3), opts);

objectStoreContract('s3 adapter on s3rver', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'bionic-s3-contract-'));
  const s3 = await startS3({ dataDir });
  return {
    store: storeOn(s3, { listPageSize: PAGE_SIZE }),
    async teardown() {
      await s3.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});

describe('s3 adapter on s3rver: server-specific behaviour', () => {
  let dataDir = '';
  let s3: S3Service | undefined;
  let proxy: Server | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'bionic-s3-'));
    s3 = await startS3({ dataDir, buckets: ['reports', 'other'] });
  }, HOOK_TIMEOUT);
  afterAll(async () => {
    await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve(undefined)));
    await s3?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }, HOOK_TIMEOUT);

  it('creates every requested bucket', async () => {
    const other = createS3ObjectStore({ ...configFor(s3!), bucket: 'other' });
    await expect(other.ping()).resolves.toBeUndefined();
    await expect(createS3ObjectStore({ ...configFor(s3!), bucket: 'missing' }).ping()).rejects.toBeInstanceOf(ObjectStoreError);
  }, 30_000);

  it('list asks for listPageSize keys per request and follows continuation tokens', async () => {
    // A recording pass-through proxy shows the requests the adapter really makes.
    const listQueries: URLSearchParams[] = [];
    const port = await freePort();
    proxy = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://proxy');
      if (url.searchParams.get('list-type') === '2') listQueries.push(url.searchParams);
      const upstream = request({ host: '127.0.0.1', port: s3!.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', (err) => res.destroy(err));
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy!.listen(port, '127.0.0.1', resolve));

    const store = createS3ObjectStore(configFor(s3!, `http://127.0.0.1:${port}`), { listPageSize: PAGE_SIZE });
    for (let i = 0; i < 23; i++) await store.put(`paged/${String(i).padStart(2, '0')}`, String(i));
    const keys = [];
    for await (const o of store.list('paged/')) keys.push(o.key);

    expect(keys).toEqual(Array.from({ length: 23 }, (_, i) => `paged/${String(i).padStart(2, '0')}`));
    expect(listQueries.map((q) => q.get('max-keys'))).toEqual(['10', '10', '10']);
    expect(listQueries[0]!.has('continuation-token')).toBe(false);
    expect(listQueries[1]!.get('continuation-token')).toBeTruthy();
    expect(listQueries[2]!.get('continuation-token')).not.toBe(listQueries[1]!.get('continuation-token'));
  }, 30_000);

  it('keeps objects across a restart on the same data directory, and ping fails while stopped', async () => {
    const before = storeOn(s3!);
    const body = new TextEncoder().encode('survives restarts ✓');
    const { etag } = await before.put('durable/report.json', body, { contentType: 'application/json' });

    await s3!.stop();
    expect(await s3!.exited).toEqual({ code: 0, signal: null });
    const err = await before.ping().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ObjectStoreError);
    await expect(before.get('durable/report.json')).rejects.toThrow(/durable\/report\.json/);

    s3 = await startS3({ dataDir, buckets: ['reports', 'other'] });
    const after = storeOn(s3);
    await expect(after.ping()).resolves.toBeUndefined();
    const got = await after.get('durable/report.json');
    expect(got).not.toBeNull();
    expect(Array.from(got!.body)).toEqual(Array.from(body));
    expect(got!.etag).toBe(etag);
    expect(got!.contentType).toBe('application/json');
  }, HOOK_TIMEOUT);
});

describe('startS3', () => {
  it('rejects with the child output when s3rver cannot listen', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'bionic-s3-busy-'));
    const first = await startS3({ dataDir });
    try {
      await expect(startS3({ dataDir, port: first.port })).rejects.toThrow(/exited before listening[\s\S]*EADDRINUSE/);
    } finally {
      await first.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, HOOK_TIMEOUT);
});
