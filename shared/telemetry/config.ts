/**
 * Device telemetry ingestion's part of the edge and worker configuration (spread into both schemas
 * in shared/config.ts), keyed by environment variable names.
 */
import { z } from 'zod';

export interface DeviceMasterKey { kid: string; secret: Uint8Array }

/** Ingestion settings; `masterKeys` empty means ingestion is off (devices get 503). */
export interface TelemetryConfig {
  /** Key ring the per-device keys are derived from; the first key is the one new devices get. */
  masterKeys: DeviceMasterKey[];
  /** Largest accepted request body in bytes (larger: 413). */
  maxBatchBytes: number;
}

function decodeBase64(text: string): Uint8Array | null {
  try {
    const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** `kid:base64key,kid:base64key`, each key 32 random bytes; the same shape as SESSION_KEYS. */
const masterKeys = z.string().transform((spec, ctx): DeviceMasterKey[] => {
  const keys: DeviceMasterKey[] = [];
  for (const part of spec.split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = part.indexOf(':');
    const kid = at > 0 ? part.slice(0, at) : '';
    const secret = decodeBase64(part.slice(at + 1));
    const problem = !/^[A-Za-z0-9_-]{1,32}$/.test(kid) ? `each entry must be kid:base64key with a kid of 1-32 characters [A-Za-z0-9_-] (got "${kid}")`
      : !secret ? `key "${kid}" is not base64`
      : secret.length !== 32 ? `key "${kid}" must be 32 bytes (256 bits), got ${secret.length}`
      : keys.some((k) => k.kid === kid) ? 'key ids must be unique' : undefined;
    if (problem) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
      return z.NEVER;
    }
    keys.push({ kid, secret: secret! });
  }
  if (keys.length === 0) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must list at least one kid:base64key' });
    return z.NEVER;
  }
  return keys;
});

export const telemetryEnv = {
  /** Master key ring for device keys (HKDF per chip id); unset turns device ingestion off. */
  TELEMETRY_DEVICE_KEYS: masterKeys.optional(),
  TELEMETRY_MAX_BATCH_BYTES: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(256 * 1024),
};

export const telemetryEnvSchema = z.object(telemetryEnv);
export type TelemetryEnv = z.output<typeof telemetryEnvSchema>;

export function telemetryConfigOf(e: TelemetryEnv): TelemetryConfig {
  return { masterKeys: e.TELEMETRY_DEVICE_KEYS ?? [], maxBatchBytes: e.TELEMETRY_MAX_BATCH_BYTES };
}
