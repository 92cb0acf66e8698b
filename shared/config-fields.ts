/**
 * Building blocks of the configuration schemas (shared/config.ts and the feature fragments it
 * composes, e.g. shared/bus/config.ts): field types and the one error type.
 */
import { z } from 'zod';

export type Env = Record<string, string | undefined>;

/** Thrown when the environment does not describe a usable configuration. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(
      'Invalid configuration:\n' +
        problems.map((p) => `  - ${p.variable}: ${p.message}`).join('\n'),
    );
  }
}

export const url = z.string().url();
export const port = z.coerce.number().int().min(0).max(65535);
export const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
export const secret = (min: number) => z.string().min(min, `must be at least ${min} characters`);

