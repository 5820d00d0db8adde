import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests start real registries, daemons and clients; two cores do not take many at once.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
