import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{shared,router,edge,workers,infra}/**/*.test.{ts,tsx}', 'tests/**/*.test.{ts,tsx}'],
    exclude: ['node_modules/**', 'data/**', 'scratch/**'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Two cores: a few files at a time, each starting its own real services.
    poolOptions: { forks: { maxForks: 3, minForks: 1 } },
    reporters: ['default', './tests/support/summary-reporter.ts'],
  },
});
