/** Every configuration variable is documented in the README and listed in .env.example. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { edgeEnvSchema, workerEnvSchema } from '../../shared/config.ts';
import { REGION_VARIABLES } from '../../shared/regions/config.ts';

const ROOT = join(import.meta.dirname, '../..');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const example = readFileSync(join(ROOT, '.env.example'), 'utf8');
const variables = [...new Set([...Object.keys(edgeEnvSchema.shape), ...Object.keys(workerEnvSchema.shape)])];

describe('configuration is documented', () => {
  it.each(variables)('%s is in the README and .env.example', (name) => {
    expect(readme).toContain(`\`${name}\``);
    expect(example).toMatch(new RegExp(`^${name}=`, 'm'));
  });

  // Per-region variables are a pattern (REGION_<ID>_<SUFFIX>): documented once, with an example region.
  it.each(Object.keys(REGION_VARIABLES))('REGION_<ID>_%s is in the README and (for some region) in .env.example', (suffix) => {
    expect(readme).toContain(`\`REGION_<ID>_${suffix}\``);
    expect(example).toMatch(new RegExp(`^#? ?REGION_[A-Z0-9]+_${suffix}=`, 'm'));
  });
});
