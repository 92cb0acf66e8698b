/**
 * ObjectStore over the S3 API (`@aws-sdk/client-s3`): AWS S3, MinIO, or s3rver in the embedded stack.
 * Web-standard APIs only, so the edge can use it on Deno and Node alike.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ObjectStoreConfig } from '../../shared/config.ts';
import type { ObjectInfo, ObjectStore, StoredObject } from '../../shared/ports/object-store.ts';

/** Any object-store failure other than "not found"; `key` is absent for bucket-level calls. */
export class ObjectStoreError extends Error {
  override readonly name = 'ObjectStoreError';
  constructor(message: string, readonly key: string | undefined, cause?: unknown) {
    super(cause === undefined ? message : `${message}: ${errorText(cause)}`, { cause });
  }
}

/** Tuning that is not part of the deployment's configuration. */
export interface S3ObjectStoreOptions {
  /** Keys per ListObjectsV2 page (S3's maximum and default: 1000). */
  listPageSize?: number;
}

/** Creates an {@link ObjectStore} on the bucket `cfg.bucket`. */
export function createS3ObjectStore(cfg: ObjectStoreConfig, options: S3ObjectStoreOptions = {}): ObjectStore {
  const Bucket = cfg.bucket;
  const listPageSize = options.listPageSize ?? 1000;
  const client = new S3Client({
    region: cfg.region,
    endpoint: cfg.endpoint,
    forcePathStyle: cfg.forcePathStyle,
    credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
    // The SDK's default checksums send bodies with aws-chunked framing, which some S3-compatible
    // servers (s3rver among them) store verbatim; checksums only where an operation requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });

  return {
    async put(key, body, opts = {}) {
      const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
      try {
        const out = await client.send(new PutObjectCommand({
          Bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength,
          ContentType: opts.contentType, Metadata: opts.metadata,
        }));
        return { etag: unquote(required(out.ETag, 'ETag', key)) };
      } catch (err) {
        throw wrap(err, 'put failed', key);
      }
    },

    async get(key) {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket, Key: key }));
        const bytes = await required(out.Body, 'Body', key).transformToByteArray();
        // Node hands back a Buffer; callers get a plain Uint8Array view on every runtime.
        const body = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        return { ...info(key, out), body } satisfies StoredObject;
      } catch (err) {
        if (isNotFound(err)) return null;
        throw wrap(err, 'get failed', key);
      }
    },

    async head(key) {
      try {
        return info(key, await client.send(new HeadObjectCommand({ Bucket, Key: key })));
      } catch (err) {
        if (isNotFound(err)) return null;
        throw wrap(err, 'head failed', key);
      }
    },

    async delete(key) {
      try {
        // S3 answers 204 for missing keys too, so deleting twice is not an error.
        await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
      } catch (err) {
        throw wrap(err, 'delete failed', key);
      }
    },

    async *list(prefix) {
      let ContinuationToken: string | undefined;
      do {
        let page;
        try {
          page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, MaxKeys: listPageSize, ContinuationToken }));
        } catch (err) {
          throw wrap(err, 'list failed', prefix);
        }
        for (const o of page.Contents ?? []) {
          const key = required(o.Key, 'Key', prefix);
          yield info(key, { ETag: o.ETag, ContentLength: o.Size, LastModified: o.LastModified });
        }
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },

    async signedUrl(key, ttlSeconds) {
      try {
        return await getSignedUrl(client, new GetObjectCommand({ Bucket, Key: key }), { expiresIn: ttlSeconds });
      } catch (err) {
        throw wrap(err, 'signing failed', key);
      }
    },

    async ping() {
      try {
        await client.send(new HeadBucketCommand({ Bucket }));
      } catch (err) {
        throw wrap(err, `bucket ${Bucket} unreachable`, undefined);
      }
    },
  };
}

function info(
  key: string,
  o: { ETag?: string; ContentLength?: number; LastModified?: Date; ContentType?: string },
): ObjectInfo {
  return {
    key,
    etag: unquote(required(o.ETag, 'ETag', key)),
    size: required(o.ContentLength, 'size', key),
    lastModified: required(o.LastModified, 'LastModified', key),
    ...(o.ContentType === undefined ? {} : { contentType: o.ContentType }),
  };
}

/** S3 sends ETags as quoted strings; the port carries the bare value. */
const unquote = (etag: string) => etag.replace(/^"(.*)"$/, '$1');

function required<T>(value: T | undefined, field: string, key: string): T {
  if (value === undefined) throw new ObjectStoreError(`response lacks ${field}`, key);
  return value;
}

// HEAD responses carry no body, so a missing key surfaces as the generic `NotFound`.
const isNotFound = (err: unknown) =>
  err instanceof Error && (err.name === 'NoSuchKey' || err.name === 'NotFound');

const wrap = (err: unknown, what: string, key: string | undefined) =>
  err instanceof ObjectStoreError ? err : new ObjectStoreError(key === undefined ? what : `${what} for ${key}`, key, err);

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status === undefined ? `${err.name}: ${err.message}` : `${err.name} (HTTP ${status}): ${err.message}`;
}
