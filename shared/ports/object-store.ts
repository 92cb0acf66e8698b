/**
 * Object store for reports. Production: S3 (or MinIO) behind a CDN; embedded: s3rver on loopback.
 */
export interface ObjectInfo { key: string; etag: string; size: number; lastModified: Date; contentType?: string }
export interface StoredObject extends ObjectInfo { body: Uint8Array }

export interface ObjectStore {
  put(key: string, body: Uint8Array | string, opts?: { contentType?: string; metadata?: Record<string, string> }): Promise<{ etag: string }>;
  /** `null` when the object does not exist. */
  get(key: string): Promise<StoredObject | null>;
  head(key: string): Promise<ObjectInfo | null>;
  delete(key: string): Promise<void>;
  /** Lists every key under a prefix, following continuation pages. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** A short-lived URL for direct download. */
  signedUrl(key: string, ttlSeconds: number): Promise<string>;
  ping(): Promise<void>;
}
